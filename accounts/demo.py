"""The demo organisation that `make run` seeds: people with every role, each with MFA enrolled,
and one reseller staff member for the admin site, with a support-reader grant to the demo
organisation (without a grant the admin shows no customer).

The demo TOTP secrets are fixed and public so a newcomer can sign in; they exist only in
demo data, which production never seeds (seed_demo refuses with DEBUG off).
"""

from __future__ import annotations

import hashlib
from binascii import unhexlify
from datetime import timedelta

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from django_otp.oath import totp

from accounts.roles import Role
from core.tenancy import bound_to_default_alias, person_context, tenant_context, unscoped_no_tenant

from .models import Membership, Organization, StaffGrant, StaffRole, TOTPDevice, User
from .selectors import user_by_email

DEMO_ORG_SLUG = "fabrikam"
DEMO_PASSWORD = "demo-portal-2026"
DEMO_OWNER_EMAIL = "owner@fabrikam.example"
DEMO_MEMBERS = [
    (DEMO_OWNER_EMAIL, "Megan Bowen", "IT Director", Role.OWNER),
    ("licenses@fabrikam.example", "Adele Vance", "License administrator", Role.LICENSE_ADMIN),
    ("billing@fabrikam.example", "Alex Wilber", "Finance manager", Role.BILLING_ADMIN),
    ("viewer@fabrikam.example", "Lynne Robbins", "Auditor", Role.VIEWER),
]
DEMO_TOTP_KEY_HEX = hashlib.sha1(b"cloud-licenses-portal demo authenticator").hexdigest()  # noqa: S324

# Reseller staff sign in at /admin/ with their own password and authenticator: not a Fabrikam member.
DEMO_STAFF_EMAIL = "support@reseller.example"
DEMO_STAFF_PASSWORD = "demo-staff-2026"
DEMO_STAFF_NAME = "Nestor Wilke"
DEMO_STAFF_GROUP = "Demo support (read-only)"
DEMO_STAFF_TOTP_KEY_HEX = hashlib.sha1(b"cloud-licenses-portal demo staff authenticator").hexdigest()  # noqa: S324


def demo_totp_code(*, staff: bool = False) -> str:
    key = DEMO_STAFF_TOTP_KEY_HEX if staff else DEMO_TOTP_KEY_HEX
    return f"{totp(unhexlify(key)):06d}"


@transaction.atomic
def seed_staff_demo() -> tuple[User, bool]:
    """Create (once) the demo reseller staff member: admin access, MFA enrolled, and view permission
    on every model through a read-only group, so the admin can be explored without changing data.
    Returns (user, created). Re-run safely: a missing device or permission is restored."""
    user = user_by_email(DEMO_STAFF_EMAIL)
    created = user is None
    if created:
        user = User.objects.create_user(
            DEMO_STAFF_EMAIL,
            DEMO_STAFF_PASSWORD,
            full_name=DEMO_STAFF_NAME,
            job_title="Reseller support",
            email_verified_at=timezone.now(),
            is_staff=True,
        )
    with person_context(user):  # devices have row-level security per person (decision 035)
        TOTPDevice.objects.get_or_create(
            user=user, name="Demo staff authenticator", defaults={"key": DEMO_STAFF_TOTP_KEY_HEX, "confirmed": True}
        )
    group, _ = Group.objects.get_or_create(name=DEMO_STAFF_GROUP)
    group.permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    user.groups.add(group)
    return user, created


@transaction.atomic
def seed_staff_demo_grant(*, staff: User, organization: Organization) -> StaffGrant:
    """A support-reader grant for the demo staff member to the demo organisation, as if Fabrikam approved it:
    the admin then shows Fabrikam read-only. Re-run safely: a grant still in force is reused, else renewed."""
    with tenant_context(organization):  # grants have row-level security (decision 044)
        for grant in StaffGrant.objects.filter(staff=staff, organization=organization, break_glass=False):
            if grant.is_effective():
                return grant
        now = timezone.now()
        return StaffGrant.objects.create(
            organization=organization, staff=staff, roles=[StaffRole.SUPPORT_READER],
            status=StaffGrant.Status.ACTIVE, starts_at=now, expires_at=now + timedelta(days=90),
            justification="Demo: standing support for Fabrikam", ticket_reference="DEMO-1", requested_by=staff,
            approved_at=now, auto_approved=True,
        )


@transaction.atomic
def seed_accounts_demo() -> tuple[Organization, User, bool]:
    """Create (once) the demo organisation and its members. Returns (org, owner, created)."""
    # Found by its fixed slug before it is in scope: as the system role (decision 044).
    with unscoped_no_tenant(atomic=False):
        organization = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
    if organization is not None:
        return bound_to_default_alias([organization])[0], user_by_email(DEMO_OWNER_EMAIL), False
    organization = Organization(
        slug=DEMO_ORG_SLUG,
        legal_name="Fabrikam, Inc.",
        business_name="Fabrikam",
        country="US",
        time_zone="America/New_York",
        tax_id="12-3456789",
        billing_address={"line1": "1 Microsoft Way", "city": "Redmond", "region": "WA", "postal_code": "98052",
                         "country": "US"},
    )
    with tenant_context(organization):  # its id is drawn before the insert: its own rows are written in its scope
        organization.save()
    owner = None
    for email, name, title, role in DEMO_MEMBERS:
        user = user_by_email(email) or User.objects.create_user(
            email, DEMO_PASSWORD, full_name=name, job_title=title, email_verified_at=timezone.now()
        )
        with person_context(user):
            TOTPDevice.objects.get_or_create(
                user=user, name="Demo authenticator", defaults={"key": DEMO_TOTP_KEY_HEX, "confirmed": True}
            )
        with tenant_context(organization):
            Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": role})
        owner = owner or user
    return organization, owner, True
