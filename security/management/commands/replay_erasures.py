"""After a restore: destroy again every data key crypto-shredded since the backup was taken.

``manage.py replay_erasures --since 2026-12-07T03:00:00Z`` reads the erasure log (core/erasure_log.py),
which lives outside the database and so survives the restore. Idempotent: a scope with no live key
is skipped. Lines that fail authentication are named and the command exits non-zero after
replaying the rest, so an operator looks at them.
"""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from core.erasure_log import erasure_log_since
from core.keys import data_key_destroy, parse_scope


class Command(BaseCommand):
    help = "Replay crypto-shredding recorded in the erasure log since a backup's time."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="the backup's time, ISO 8601 (e.g. 20261207T030000Z)")

    def handle(self, *args, since: str, **options):
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise CommandError(f"--since must be an ISO 8601 time, got {since!r}.") from exc
        if moment.tzinfo is None:
            raise CommandError("--since needs a time zone (Z for UTC).")
        erasures, bad_lines = erasure_log_since(moment)
        replayed = 0
        for erasure in erasures:
            destroyed = data_key_destroy(scope=parse_scope(erasure.scope), actor=Actor.system("replay_erasures"))
            replayed += bool(destroyed)
        self.stdout.write(
            f"{len(erasures)} erasure(s) since {moment.isoformat()}; {replayed} key scope(s) destroyed again."
        )
        if bad_lines:
            raise CommandError(f"Erasure log lines failed authentication and were not replayed: {bad_lines}")
