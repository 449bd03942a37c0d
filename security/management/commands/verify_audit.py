"""Walk the audit chain and report every break: edits, deletions, truncation, a forged head,
and a chain that no longer reaches the latest checkpoint written outside the database."""

from django.core.management.base import BaseCommand, CommandError

from core.audit import latest_checkpoint, verify_chain
from core.models import AuditChainHead


class Command(BaseCommand):
    help = (
        "Verify the HMAC-chained audit log against its latest signed checkpoint (AUDIT_CHECKPOINT_PATH). "
        "Exit code 1 if any event was altered, removed or truncated, or the chain was deleted."
    )

    def handle(self, *args, **options):
        problems = 0
        for problem in verify_chain():
            problems += 1
            self.stderr.write(f"PROBLEM {problem}")
        if problems:
            raise CommandError(f"Audit chain verification FAILED: {problems} problem(s).", returncode=1)
        head = AuditChainHead.objects.filter(pk=1).first()
        count = head.sequence if head else 0
        checkpoint = latest_checkpoint()
        anchor = (
            f"reaches checkpoint #{checkpoint.sequence} of {checkpoint.at.isoformat()}"
            if checkpoint
            else "no checkpoint written yet"
        )
        self.stdout.write(self.style.SUCCESS(f"OK: audit chain intact, {count} event(s) verified; {anchor}."))
