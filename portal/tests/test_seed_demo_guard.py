import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.demo import DEMO_ORG_SLUG, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD, DEMO_TOTP_KEY_HEX, demo_totp_code
from accounts.models import Organization, StaffGrant, StaffRole, User

pytestmark = pytest.mark.django_db


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    settings.TESTING = False
    with pytest.raises(CommandError, match="credentials are public"):
        call_command("seed_demo", accounts_only=True)
    assert not Organization.objects.filter(slug=DEMO_ORG_SLUG).exists()


def test_seed_demo_accounts_only_is_idempotent(settings):
    settings.DEBUG = True
    call_command("seed_demo", accounts_only=True)
    call_command("seed_demo", accounts_only=True)
    assert Organization.objects.filter(slug=DEMO_ORG_SLUG).count() == 1


def test_demo_staff_member_signs_in_to_the_admin_with_its_own_code(settings):
    """The README's staff sign-in: seeded once, its own TOTP from `demo_totp --staff`, read-only admin."""
    settings.DEBUG = True
    call_command("seed_demo", accounts_only=True)
    call_command("seed_demo", accounts_only=True)
    staff = User.objects.get_by_email(DEMO_STAFF_EMAIL)
    assert staff.is_staff and not staff.is_superuser
    assert staff.totpdevice_set.count() == 1
    assert staff.has_perm("licensing.view_subscription") and not staff.has_perm("licensing.change_subscription")

    printed = io.StringIO()
    call_command("demo_totp", staff=True, code_only=True, stdout=printed)
    code = printed.getvalue().strip()
    assert code == demo_totp_code(staff=True) and code.isdigit() and len(code) == 6
    assert staff.totpdevice_set.get().key != DEMO_TOTP_KEY_HEX  # its own authenticator, not the owner's
    client = Client()
    response = client.post("/admin/login/", {"username": DEMO_STAFF_EMAIL, "password": DEMO_STAFF_PASSWORD,
                                             "otp_token": code, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/licensing/subscription/").status_code == 200
    # A support-reader grant to the demo organisation, seeded once: the admin shows Fabrikam, read-only.
    [grant] = StaffGrant.objects.filter(staff=staff)
    assert grant.is_effective() and grant.roles == [StaffRole.SUPPORT_READER]
    organizations = client.get("/admin/accounts/organization/").content.decode()
    assert f"/admin/accounts/organization/{grant.organization_id}/change/" in organizations


def test_seeding_before_the_emulator_started_says_what_to_run(settings, tmp_path):
    """A fresh clone has no emulator CA until the emulator first starts: a clear message, not an OSError."""
    settings.DEBUG = True
    settings.MS_AUTHORITY_HOST = settings.MSEMULATOR_URL
    settings.MS_CA_BUNDLE = str(tmp_path / "msemulator" / "msemulator-ca.pem")
    with pytest.raises(CommandError, match="make run"):
        call_command("seed_demo")
