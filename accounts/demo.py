"""The demo organisation that `make run` seeds: people with every role, each with MFA enrolled.

The demo TOTP secret is fixed and public so a newcomer can sign in; it exists only in
demo data, which production never seeds.
"""

from __future__ import annotations

import hashlib
from binascii import unhexlify

from django.db import transaction
from django.utils import timezone
from django_otp.oath import totp

from accounts.roles import Role

from .models import Membership, Organization, TOTPDevice, User

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


def demo_totp_code() -> str:
    return f"{totp(unhexlify(DEMO_TOTP_KEY_HEX)):06d}"


@transaction.atomic
def seed_accounts_demo() -> tuple[Organization, User, bool]:
    """Create (once) the demo organisation and its members. Returns (org, owner, created)."""
    organization = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
    if organization is not None:
        return organization, User.objects.get_by_email(DEMO_OWNER_EMAIL), False
    organization = Organization.objects.create(
        slug=DEMO_ORG_SLUG,
        legal_name="Fabrikam, Inc.",
        business_name="Fabrikam",
        country="US",
        time_zone="America/New_York",
        tax_id="12-3456789",
        billing_address={"line1": "1 Microsoft Way", "city": "Redmond", "region": "WA", "postal_code": "98052",
                         "country": "US"},
    )
    owner = None
    for email, name, title, role in DEMO_MEMBERS:
        user = User.objects.get_by_email(email) or User.objects.create_user(
            email, DEMO_PASSWORD, full_name=name, job_title=title, email_verified_at=timezone.now()
        )
        TOTPDevice.objects.get_or_create(
            user=user, name="Demo authenticator", defaults={"key": DEMO_TOTP_KEY_HEX, "confirmed": True}
        )
        Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": role})
        owner = owner or user
    return organization, owner, True
