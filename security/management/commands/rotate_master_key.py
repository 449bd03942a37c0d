"""Re-wrap every data key under the active (first-listed) master key.

Operator steps: put the new master key first in FIELD_ENCRYPTION_MASTER_KEYS (keep
the old one listed after it), deploy, run this command, then remove the old key.
Safe to interrupt and re-run: keys already under the active master key are skipped.
"""

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from core.crypto import DecryptionError, KeyConfigurationError
from core.keys import data_keys_rewrap, data_keys_to_rewrap


class Command(BaseCommand):
    help = "Re-wrap every data key not yet wrapped by the active master key (idempotent, resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            active_kid, pending = data_keys_to_rewrap()
        except KeyConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        total = pending.count()
        self.stdout.write(f"Active master key {active_kid!r}: {total} data key(s) to re-wrap.")
        actor = Actor.system("rotate_master_key")
        done = 0
        cursor = None
        while True:
            batch = pending if cursor is None else pending.filter(pk__gt=cursor)
            key_ids = list(batch.values_list("pk", flat=True)[:batch_size])
            if not key_ids:
                break
            try:
                done += data_keys_rewrap(key_ids=key_ids, actor=actor)
            except DecryptionError as exc:
                raise CommandError(f"{exc} Keep the old master key configured until this command finishes.") from exc
            cursor = key_ids[-1]
            self.stdout.write(f"data keys: {done}/{total}")
        self.stdout.write(self.style.SUCCESS(f"Re-wrapped {done} data key(s) under master key {active_kid!r}."))
