"""Seed the demo organisation: people and MFA, a linked Microsoft tenant, subscriptions in
several states, directory users with licenses and 90 days of usage history, the invoices the
billing run issues for its subscriptions; and a reseller staff member for the admin site.

Idempotent part by part: a second run reuses what exists and finishes what a failed run left.
"""

from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError
from django.test.utils import override_settings

from accounts.demo import (
    DEMO_ORG_SLUG,
    DEMO_STAFF_EMAIL,
    seed_accounts_demo,
    seed_staff_demo,
    seed_staff_demo_grant,
)
from billing.demo import seed_billing_demo
from licensing.demo import seed_licensing_demo
from licensing.demo_directory import seed_directory_demo
from licensing.models import DirectoryUser, Subscription


class Command(BaseCommand):
    help = "Seed the demo organisation (needs the Microsoft emulator running for the licensing part)."

    def add_arguments(self, parser):
        parser.add_argument("--emulator-url", dest="emulator_url", default=None)
        parser.add_argument("--accounts-only", action="store_true", help="Only people and MFA, no Microsoft data.")

    def handle(self, *args, emulator_url=None, accounts_only=False, **options):
        # The demo people share a published password and TOTP secret: on a real deployment they are open doors.
        if not (settings.DEBUG or settings.TESTING):
            raise CommandError("Refusing to seed demo accounts with DEBUG off: their credentials are public.")
        with override_settings(**self._emulator_settings(emulator_url)):
            self._seed(emulator_url=emulator_url, accounts_only=accounts_only)

    @staticmethod
    def _emulator_settings(emulator_url: str | None) -> dict:
        """Point the Microsoft client at an emulator on another port, unless it is configured for Microsoft."""
        if not emulator_url or settings.MS_AUTHORITY_HOST != settings.MSEMULATOR_URL:
            return {}
        return {
            "MSEMULATOR_URL": emulator_url,
            "MS_AUTHORITY_HOST": emulator_url,
            "MS_PARTNER_CENTER_URL": f"{emulator_url}/partnercenter",
            "MS_GRAPH_URL": f"{emulator_url}/graph",
        }

    @staticmethod
    def _require_emulator_ca() -> None:
        """The emulator writes its CA on first start; without it every Microsoft call fails with an OSError."""
        using_emulator = settings.MS_AUTHORITY_HOST == settings.MSEMULATOR_URL
        if using_emulator and settings.MS_CA_BUNDLE and not Path(settings.MS_CA_BUNDLE).exists():
            raise CommandError(
                f"The Microsoft emulator's CA ({settings.MS_CA_BUNDLE}) does not exist yet: the emulator has not "
                "started. Run `make seed` or `make run`, which start it before seeding."
            )

    def _seed(self, *, emulator_url, accounts_only):
        organization, owner, created = seed_accounts_demo()
        self.stdout.write(
            f"{'Created' if created else 'Reusing'} demo organisation '{DEMO_ORG_SLUG}' and its members."
        )
        staff, staff_created = seed_staff_demo()
        self.stdout.write(f"{'Created' if staff_created else 'Reusing'} demo staff member {DEMO_STAFF_EMAIL}.")
        grant = seed_staff_demo_grant(staff=staff, organization=organization)
        self.stdout.write(f"Demo staff grant to '{DEMO_ORG_SLUG}': {grant.get_roles_display()} until "
                          f"{grant.expires_at:%Y-%m-%d}.")
        if accounts_only:
            return
        self._require_emulator_ca()
        if not Subscription.objects.for_org(organization).exists():
            self.stdout.write("Linking the Microsoft tenant and buying subscriptions through the emulator …")
            seed_licensing_demo(organization=organization, actor=owner, emulator_url=emulator_url)
        if not DirectoryUser.objects.for_org(organization).exists():
            self.stdout.write("Syncing the directory, assigning licenses, writing 90 days of usage …")
            seed_directory_demo(organization=organization, actor=owner)
        self.stdout.write("Billing the closed months of its subscriptions …")
        billed = seed_billing_demo(organization=organization)
        self.stdout.write(f"{len(billed['documents'])} new invoice(s) and credit note(s).")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
