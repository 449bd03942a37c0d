"""Seed the demo organisation: people and MFA, a linked Microsoft tenant, subscriptions in
several states, directory users with licenses and 90 days of usage history.

Idempotent part by part: a second run reuses what exists and finishes what a failed run left.
"""

from django.core.management import BaseCommand

from accounts.demo import DEMO_ORG_SLUG, seed_accounts_demo
from licensing.demo import seed_licensing_demo
from licensing.demo_directory import seed_directory_demo
from licensing.models import DirectoryUser, Subscription


class Command(BaseCommand):
    help = "Seed the demo organisation (needs the Microsoft emulator running for the licensing part)."

    def add_arguments(self, parser):
        parser.add_argument("--emulator-url", dest="emulator_url", default=None)
        parser.add_argument("--accounts-only", action="store_true", help="Only people and MFA, no Microsoft data.")

    def handle(self, *args, emulator_url=None, accounts_only=False, **options):
        organization, owner, created = seed_accounts_demo()
        self.stdout.write(
            f"{'Created' if created else 'Reusing'} demo organisation '{DEMO_ORG_SLUG}' and its members."
        )
        if accounts_only:
            return
        if not Subscription.objects.for_org(organization).exists():
            self.stdout.write("Linking the Microsoft tenant and buying subscriptions through the emulator …")
            seed_licensing_demo(organization=organization, actor=owner, emulator_url=emulator_url)
        if not DirectoryUser.objects.for_org(organization).exists():
            self.stdout.write("Syncing the directory, assigning licenses, writing 90 days of usage …")
            seed_directory_demo(organization=organization, actor=owner)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
