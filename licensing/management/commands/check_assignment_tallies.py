"""Recount every organisation's assignments and compare with the tallies the pages read (decision 038).

Exits non-zero when any disagree (so a deploy check or cron job notices); ``--fix`` rewrites them from the
recount. The daily ``licensing.tasks.check_assignment_tallies`` task does the same with ``--fix``.
"""

from django.core.management.base import BaseCommand, CommandError

from licensing.services.tallies import check_all_tallies


class Command(BaseCommand):
    help = "Check the per-pool assignment tallies against a recount; --fix repairs any that drifted."

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="rewrite drifted tallies from the recount")

    def handle(self, *args, fix=False, **options):
        found = check_all_tallies(fix=fix)
        for org_id, drift in found.items():
            for d in drift:
                self.stdout.write(f"{org_id} pool {d.pool_id} {d.state}: tallied {d.tallied}, counted {d.counted}")
        if not found:
            self.stdout.write("assignment tallies agree with the assignments")
        elif fix:
            self.stdout.write(f"repaired the tallies of {len(found)} organisation(s)")
        else:
            raise CommandError(f"assignment tallies disagree in {len(found)} organisation(s); run with --fix")
