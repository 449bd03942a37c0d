"""Crypto-shred one key scope: every value encrypted under it becomes unrecoverable, backups included."""

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from core.keys import data_key_destroy, parse_scope


class Command(BaseCommand):
    help = "Destroy every data key of a scope (crypto-shredding). Irreversible and audited."

    def add_arguments(self, parser):
        parser.add_argument("--scope", required=True, help="subject:<uuid> (or org:<uuid>).")

    def handle(self, *args, scope: str, **options):
        try:
            key_scope = parse_scope(scope)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        destroyed = data_key_destroy(scope=key_scope, actor=Actor.system("destroy_data_key"))
        if not destroyed:
            self.stdout.write(f"No live data key for {key_scope}; nothing to destroy.")
            return
        self.stdout.write(self.style.SUCCESS(f"Destroyed {len(destroyed)} data key(s) of {key_scope}."))
