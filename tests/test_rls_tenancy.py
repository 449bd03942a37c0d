"""Row-level security on the tables that decide tenancy: organisations, memberships and staff grants.

As raw SQL under the application role, and end to end with the application role on the default connection and
the system role on its own (``tests.test_rls.ProductionRoles``). See
docs/decisions/044-row-level-security-on-tenancy.md.
"""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.grants import staff_grants_expire_and_remind
from accounts.models import ORGANIZATION_SLUG_INDEX, Membership, Organization, StaffGrant, StaffRole
from accounts.selectors import display_organization, memberships_for_user, user_by_email
from accounts.tests.api_support import key_client, make_api_key
from accounts.tests.factories import MembershipFactory, OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from billing.models import BillingProfile
from core.crypto import blind_index
from core.tenancy import RLS_PERSON_SETTING, RLS_SETTING, TENANCY_TABLES, person_context, tenant_context
from tests.test_rls import (
    PROBE_ROLE,
    ProductionRoles,
    current_role,
    fetch,
    roles,  # noqa: F401 -- the fixture
    tables_with_policy,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]


def _scope(orgs=(), people=()):
    fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, ",".join(str(o) for o in orgs)])
    fetch("SELECT set_config(%s, %s, true)", [RLS_PERSON_SETTING, ",".join(str(p) for p in people)])


def _ids(sql, params=None) -> set:
    return {row[0] for row in fetch(sql, params)}


def test_the_migration_puts_both_policies_on_the_tables_the_code_names(db):
    migration = importlib.import_module("portal.migrations.0009_rls_organizations_memberships_grants")
    assert migration.TENANCY_TABLES == TENANCY_TABLES
    assert set(TENANCY_TABLES) <= tables_with_policy() and set(TENANCY_TABLES) == tables_with_policy("person_read")


@pytest.fixture
def two_customers(db):
    """Two organisations, each with a member and a staff member holding a grant."""
    world = {}
    for name in ("a", "b"):
        membership = MembershipFactory(role="owner")
        grant = StaffGrantFactory(organization=membership.organization, staff=UserFactory(is_staff=True))
        world[name] = (membership.organization, membership, grant)
    return world


def test_the_application_role_reads_and_writes_only_what_its_scope_names(roles, two_customers):  # noqa: F811
    (org_a, member_a, grant_a), (org_b, member_b, grant_b) = two_customers["a"], two_customers["b"]
    alice, staff_a = member_a.user, grant_a.staff
    fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
    organizations = "SELECT id FROM accounts_organization"
    memberships = "SELECT id FROM accounts_membership"
    grants = "SELECT id FROM accounts_staffgrant"

    # Nobody in scope, or only strangers: nothing at all.
    for orgs, people in (((), ()), ((uuid.uuid4(),), (uuid.uuid4(),))):
        _scope(orgs, people)
        fetch("SELECT set_config('app.rls_bypass', 'on', true)")
        assert (_ids(organizations), _ids(memberships), _ids(grants)) == (set(), set(), set())

    # A tenant: its own organisation, memberships and grants, nothing of the other.
    _scope([org_a.pk])
    assert (_ids(organizations), _ids(memberships), _ids(grants)) == ({org_a.pk}, {member_a.pk}, {grant_a.pk})
    # The other's rows cannot be changed or deleted, nor rows planted in it.
    assert fetch("UPDATE accounts_organization SET status = 'closed' WHERE id = %s RETURNING id", [org_b.pk]) == []
    assert fetch("DELETE FROM accounts_membership WHERE id = %s RETURNING id", [member_b.pk]) == []
    assert fetch("UPDATE accounts_staffgrant SET status = 'active' WHERE id = %s RETURNING id", [grant_b.pk]) == []
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch("UPDATE accounts_membership SET organization_id = %s WHERE id = %s", [org_b.pk, member_a.pk])
    plant_membership = (
        "INSERT INTO accounts_membership (id, created_at, updated_at, user_id, organization_id, role) "
        "VALUES (%s, now(), now(), %s, %s, 'owner')"
    )
    plant_grant = (
        "INSERT INTO accounts_staffgrant (id, created_at, updated_at, organization_id, staff_id, roles, status, "
        "starts_at, expires_at, justification, ticket_reference, break_glass, auto_approved, reminders_sent) "
        "VALUES (%s, now(), now(), %s, %s, '[]', 'active', now(), now() + interval '1 hour', 'x', '', false, false, "
        "'[]')"
    )
    plant_organization = (
        "INSERT INTO accounts_organization (id, created_at, updated_at, slug, legal_name, business_name, country, "
        "time_zone, tax_id, status) VALUES (%s, now(), now(), %s, 'x', '', 'US', 'UTC', '', 'active')"
    )
    for sql, params in (
        (plant_membership, [uuid.uuid4(), alice.pk, org_b.pk]),
        (plant_grant, [uuid.uuid4(), org_b.pk, staff_a.pk]),
        (plant_organization, [uuid.uuid4(), "org-planted"]),
    ):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch(sql, params)

    # A person: their memberships and the organisations they belong to; a staff member: their grants and
    # the organisations those name. Reading only: nothing of theirs can be changed without the tenant.
    _scope(people=[alice.pk])
    assert (_ids(organizations), _ids(memberships), _ids(grants)) == ({org_a.pk}, {member_a.pk}, set())
    assert fetch("UPDATE accounts_membership SET role = 'viewer' WHERE id = %s RETURNING id", [member_a.pk]) == []
    assert fetch("DELETE FROM accounts_membership WHERE id = %s RETURNING id", [member_a.pk]) == []
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch(plant_membership, [uuid.uuid4(), alice.pk, org_b.pk])  # joining another organisation
    _scope(people=[staff_a.pk])
    assert (_ids(organizations), _ids(memberships), _ids(grants)) == ({org_a.pk}, set(), {grant_a.pk})
    assert fetch("UPDATE accounts_staffgrant SET expires_at = expires_at + interval '1 day' WHERE id = %s "
                 "RETURNING id", [grant_a.pk]) == []
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch(plant_grant, [uuid.uuid4(), org_a.pk, staff_a.pk])  # granting oneself more
    fetch("RESET ROLE")
    assert Membership.objects.get(pk=member_b.pk).organization_id == org_b.pk
    assert StaffGrant.objects.filter(organization__in=[org_a, org_b]).count() == 2
    assert not Organization.objects.filter(slug="org-planted").exists()


SIGNUP = {
    "full_name": "Owner Person",
    "email": "owner@signup.example",
    "password1": "a sturdy passphrase 42",
    "password2": "a sturdy passphrase 42",
    "legal_name": "Signup Trading Ltd",
    "business_name": "Signup Trading",
    "country": "gb",
    "time_zone": "Europe/London",
}


def _emailed_path(pattern: str) -> str:
    return re.search(pattern, mail.outbox[-1].body).group(0).split("://", 1)[1].split("/", 1)[1]


@pytest.mark.django_db(transaction=True)
def test_a_customer_signs_up_works_in_and_runs_their_organisations_as_the_application_role(settings):
    other = MembershipFactory(role="owner")  # another customer, never shown
    second = OrganizationFactory()
    old_slug = "signup-trading-ltd"
    joiner = UserFactory(email="joiner@signup.example", email_verified_at=timezone.now())
    with ProductionRoles(settings) as production:
        assert current_role() == PROBE_ROLE
        # Sign up: the organisation and its owner's membership are written in the new organisation's scope.
        client = Client()
        response = client.post(reverse("accounts:signup"), SIGNUP)
        assert response.status_code == 302, response.content[:500]
        client.get("/" + _emailed_path(r"https?://\S+/accounts/verify-email/\S+"))
        owner = user_by_email(SIGNUP["email"])  # no one in scope yet: as the system role (decision 043)
        assert owner.email_verified
        with person_context(owner):
            [membership] = Membership.objects.filter(user=owner).select_related("organization")
        org = membership.organization
        assert membership.role == "owner" and org.display_name == "Signup Trading"
        with tenant_context(second):
            MembershipFactory(user=owner, organization=second, role="viewer")
        with tenant_context(org):
            Organization.objects.filter(pk=org.pk).update(
                previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX, old_slug)
            )

        # The dashboard, the switcher listing both organisations (and no one else's), and switching.
        verified_client(client, owner)
        page = client.get(f"/o/{org.slug}/")
        assert page.status_code == 200
        switcher = [m.organization.pk for m in page.wsgi_request.memberships]
        assert sorted(switcher, key=str) == sorted([org.pk, second.pk], key=str)
        assert other.organization.slug not in page.content.decode()
        assert page.wsgi_request.organization._state.db == "default"  # read as the system role, handed back
        assert client.get(f"/o/{second.slug}/").status_code == 200
        assert client.session["current_org"] == second.slug
        assert client.get("/")["Location"] == f"/o/{second.slug}/"
        # An old slug redirects its member; a non-member gets 404, whichever slug.
        moved = client.get(f"/o/{old_slug}/team/?page=2")
        assert (moved.status_code, moved["Location"]) == (301, f"/o/{org.slug}/team/?page=2")
        stranger = verified_client(Client(), other.user)
        for slug in (org.slug, old_slug, "org-nothere1"):
            assert stranger.get(f"/o/{slug}/").status_code == 404

        # Invite, accept, change the role, remove.
        team = reverse("team:members", kwargs={"org_slug": org.slug})
        invited = client.post(reverse("team:invitation_create", kwargs={"org_slug": org.slug}),
                              {"email": joiner.email, "role": "viewer"})
        assert invited.status_code == 302, invited.content[:500]
        accept = "/" + _emailed_path(r"https?://\S+/accounts/invitations/[^/\s]+/")
        invitee = verified_client(Client(), joiner)
        assert invitee.get(accept).status_code == 200
        assert invitee.post(accept)["Location"] == f"/o/{org.slug}/"
        assert invitee.get(f"/o/{org.slug}/").status_code == 200
        with tenant_context(org):
            joined = Membership.objects.get(organization=org, user=joiner)
        assert client.post(reverse("team:member_role", kwargs={"org_slug": org.slug, "membership_id": joined.pk}),
                           {"role": "license_admin"}).status_code == 302
        with tenant_context(org):
            assert Membership.objects.get(pk=joined.pk).role == "license_admin"
        assert client.post(reverse("team:member_remove", kwargs={"org_slug": org.slug, "membership_id": joined.pk})
                           ).status_code == 302
        assert invitee.get(f"/o/{org.slug}/").status_code == 404  # removed: no longer in the person's list
        assert client.get(team).status_code == 200

        # The API with an API key: the key decides the organisation, as the system role.
        with tenant_context(org):  # as the team page creates it
            _key, plaintext = make_api_key(org, creator=owner)
        response = key_client(plaintext).get("/api/v1/organization/")
        assert response.status_code == 200, response.content[:300]
        assert response.json()["slug"] == org.slug

        # Without the system role nothing is found before the tenant: 404 or sign-in, never a 500 or data.
        production.system_configured(False)
        for path in (f"/o/{org.slug}/", "/"):  # the session's user is not found either (decision 043): sign-in
            blocked = client.get(path)
            assert blocked.status_code == 302 and blocked["Location"].startswith(reverse("accounts:login"))
        assert memberships_for_user(owner) == [] and display_organization(owner, org.slug) is None
        assert key_client(plaintext).get("/api/v1/organization/").status_code == 401
        production.system_configured(True)
    assert Membership.objects.filter(user=owner).count() == 2
    assert not Membership.objects.filter(user=joiner).exists()


@pytest.mark.django_db(transaction=True)
def test_reseller_access_and_the_staff_admin_work_as_the_application_role(settings):
    owner_membership = MembershipFactory(role="owner")
    org, owner = owner_membership.organization, owner_membership.user
    hidden = OrganizationFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    helper = UserFactory(is_staff=True)  # people are created as the owner: the application role writes only its own
    with ProductionRoles(settings):
        admin = verified_client(Client(), staff)
        # Asking for access names the organisation by its slug, before any grant covers it.
        asked = admin.post(reverse("admin:accounts_staffgrant_request"), {
            "organization": org.slug, "roles": [StaffRole.SUPPORT_READER, StaffRole.BILLING_OPERATOR],
            "hours": 8, "justification": "Ticket 12: invoices", "ticket_reference": "12"})
        assert asked.status_code == 302, asked.content[:500]
        with person_context(staff):
            [grant] = StaffGrant.objects.filter(staff=staff)
        assert grant.status == StaffGrant.Status.REQUESTED and grant.organization_id == org.pk
        # The grants list: a superuser oversees every grant (as the system role); any other staff member sees
        # their own, in their own context, with the organisations they name.
        with tenant_context(hidden):
            theirs = StaffGrantFactory(organization=hidden, staff=helper, roles=[StaffRole.SUPPORT_READER])
        grant_list = reverse("admin:accounts_staffgrant_changelist")
        assert admin.get(grant_list).context["cl"].result_count == 2
        own = verified_client(Client(), helper).get(grant_list)
        assert [(g.pk, g.organization.slug) for g in own.context["cl"].result_list] == [(theirs.pk, hidden.slug)]

        # Not approved yet: the organisation is out of the admin's reach.
        organizations = reverse("admin:accounts_organization_changelist")
        change = reverse("admin:accounts_organization_change", args=[org.pk])
        assert admin.get(organizations).context["cl"].result_count == 0
        assert admin.get(change).status_code == 404

        # The owner approves on the Reseller access page.
        customer = verified_client(Client(), owner)
        page_url = reverse("team:reseller_access", kwargs={"org_slug": org.slug})
        assert "Ticket 12: invoices" in customer.get(page_url).content.decode()
        approve = reverse("team:reseller_access_approve", kwargs={"org_slug": org.slug, "grant_id": grant.pk})
        assert customer.post(approve).status_code == 302

        # Under the grant: the organisation listed and shown, no other; a billing change is made.
        listed = admin.get(organizations)
        assert [o.pk for o in listed.context["cl"].result_list] == [org.pk]
        assert admin.get(change).status_code == 200
        assert admin.get(reverse("admin:accounts_organization_change", args=[hidden.pk])).status_code == 404
        with tenant_context(org):
            profile, _ = BillingProfile.objects.get_or_create(organization=org)
        changed = admin.post(reverse("admin:billing_billingprofile_change", args=[profile.pk]),
                             {"currency": "EUR", "tier": profile.tier, "payment_terms_days": 21})
        assert changed.status_code == 302, changed.content[:500]
        with tenant_context(org):
            assert BillingProfile.objects.get(pk=profile.pk).payment_terms_days == 21

        # The owner revokes: on the very next request the admin shows nothing.
        revoke = reverse("team:reseller_access_revoke", kwargs={"org_slug": org.slug, "grant_id": grant.pk})
        assert customer.post(revoke).status_code == 302
        assert admin.get(organizations).context["cl"].result_count == 0
        assert admin.get(change).status_code == 404

        # An expired grant gives nothing either, before the sweep marks it.
        with tenant_context(org):
            expired = StaffGrantFactory(organization=org, staff=staff, roles=[StaffRole.SUPPORT_READER],
                                        starts_at=timezone.now() - timedelta(hours=3),
                                        expires_at=timezone.now() - timedelta(hours=1))
        assert admin.get(organizations).context["cl"].result_count == 0
        # The sweep finds it as the system role and expires it in its organisation, as the application role; the
        # helper's grant, ending within a day, gets its reminder there too.
        assert staff_grants_expire_and_remind() == {"expired": 1, "reminded": 1}
        with tenant_context(org):
            assert StaffGrant.objects.get(pk=expired.pk).status == StaffGrant.Status.EXPIRED
    assert StaffGrant.objects.get(pk=grant.pk).status == StaffGrant.Status.REVOKED
