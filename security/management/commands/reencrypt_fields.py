"""Rotate data keys and re-encrypt every encrypted field under the new keys.

Each scope (organisation or data subject) met on the walk gets a new active data key
once per run; the old one is retired and still decrypts, so every row stays readable
throughout. Rows are walked in id order with a cursor and updated with ``.update()``.
After an interruption, re-run with ``--resume`` to finish without rotating again: rows
already under their scope's active key are skipped.
"""

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from core.crypto import DecryptionError
from core.keys import ReencryptBatch, data_key_rotate, encrypted_models, parse_scope, unscoped_manager
from core.tenancy import unscoped_no_tenant


class Command(BaseCommand):
    help = "Rotate data keys and re-encrypt every encrypted field in id-ordered batches."

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Only this model, as app_label.Model.")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--scope", help="Only values under this key scope, e.g. org:<uuid> or subject:<uuid>.")
        parser.add_argument(
            "--resume", action="store_true", help="Do not rotate keys; re-encrypt what is not yet under the active key."
        )

    def handle(self, *args, model=None, batch_size=500, scope=None, resume=False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            only_scope = parse_scope(scope) if scope else None
            targets = encrypted_models(model)
        except (ValueError, LookupError) as exc:
            raise CommandError(str(exc)) from exc
        actor = Actor.system("reencrypt_fields")
        worker = ReencryptBatch(actor=actor, rotate=not resume, only_scope=only_scope)
        if only_scope is not None and not resume:
            data_key_rotate(scope=only_scope, actor=actor)
            worker.rotated.add(only_scope)

        rows_changed = 0
        for model_class, fields in targets:
            label = model_class._meta.label
            manager = unscoped_manager(model_class)
            # Reads span every organisation: as the system role (docs/decisions/025-rls-without-a-bypass.md).
            with unscoped_no_tenant():
                total = manager.count()
            seen = 0
            cursor = None
            while True:
                queryset = manager.order_by("pk")
                if cursor is not None:
                    queryset = queryset.filter(pk__gt=cursor)
                with unscoped_no_tenant():
                    batch = list(queryset[:batch_size])
                if not batch:
                    break
                try:
                    rows_changed += worker.run(model_class, fields, batch)
                except DecryptionError as exc:
                    raise CommandError(f"{label} after id {cursor}: {exc}") from exc
                cursor = batch[-1].pk
                seen += len(batch)
                self.stdout.write(f"{label}: {seen}/{total}")
            if not total:
                self.stdout.write(f"{label}: 0/0")

        for problem in worker.skipped:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {worker.values} value(s) in {rows_changed} row(s) across {len(targets)} model(s); "
                f"rotated {len(worker.rotated)} data key scope(s) (retired keys still decrypt)."
            )
        )
