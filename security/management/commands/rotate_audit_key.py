"""Move the audit chain to a new HMAC key (docs/decisions/027-hardening.md, "Rotating the audit key").

1. Set AUDIT_HMAC_KEY to the new key and AUDIT_HMAC_PREVIOUS_KEY to the old one on every process and
   restart them: new events are chained with the new key, verification accepts both.
2. Run this command (as the table owner). It verifies the chain, re-chains every event under the new
   key and writes a re-keyed checkpoint.
3. Remove AUDIT_HMAC_PREVIOUS_KEY everywhere and restart; `verify_audit` passes with the new key alone.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.audit import RekeyRefused, chain_rekey


class Command(BaseCommand):
    help = "Re-chain the audit log under AUDIT_HMAC_KEY after a key rotation (AUDIT_HMAC_PREVIOUS_KEY set)."

    def handle(self, *args, **options):
        if not settings.AUDIT_HMAC_PREVIOUS_KEY:
            raise CommandError(
                "Set AUDIT_HMAC_KEY to the new key and AUDIT_HMAC_PREVIOUS_KEY to the retiring one, then run again."
            )
        if settings.AUDIT_HMAC_PREVIOUS_KEY == settings.AUDIT_HMAC_KEY:
            raise CommandError("AUDIT_HMAC_PREVIOUS_KEY is the same as AUDIT_HMAC_KEY: nothing to rotate.")
        try:
            count = chain_rekey()
        except RekeyRefused as exc:
            raise CommandError(f"The audit chain does not verify; not re-keyed: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {count} event(s) re-chained under the new key. Remove AUDIT_HMAC_PREVIOUS_KEY and restart."
            )
        )
