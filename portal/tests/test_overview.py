"""The organisation overview page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from core.audit import Actor, audit_record
from core.tenancy import tenant_context

pytestmark = pytest.mark.django_db

URL = "/o/contoso/"


def test_new_organisation_is_told_what_to_do_next(owner):
    client, user = owner
    html = client.get(URL).content.decode()
    assert f"Welcome, {user.full_name}" in html
    assert "Get started" in html and "Link your Microsoft tenant" in html and "Buy subscriptions" in html
    assert "No activity yet" in html
    assert "Not linked" in html


def test_viewer_is_not_offered_actions_they_cannot_take(member_client):
    client, _ = member_client(Role.VIEWER)
    html = client.get(URL).content.decode()
    assert "An owner or license admin can do this." in html
    assert "Invite people" not in html


def test_summary_cards_show_members_tenant_and_recent_activity(owner, organization):
    client, user = owner
    MembershipFactory(organization=organization, role=Role.VIEWER)
    with tenant_context(organization):
        MicrosoftTenant.objects.create(
            organization=organization,
            primary_domain="contoso.onmicrosoft.com",
            relationship_status=MicrosoftTenant.RelationshipStatus.ACTIVE,
        )
    audit_record(actor=Actor.user(user), action="tenant.linked", organization=organization)
    html = client.get(URL).content.decode()
    assert "contoso.onmicrosoft.com" in html
    assert "Get started" not in html
    assert "1 owner" in html
    assert "Tenant linked".lower() in html and user.full_name in html


def test_other_organisations_activity_is_not_shown(owner):
    client, _ = owner
    other = OrganizationFactory(slug="other")
    audit_record(actor=Actor.system("x"), action="secret.thing", organization=other)
    assert "secret" not in client.get(URL).content.decode()


def test_query_count_does_not_grow_with_the_organisation(owner, organization):
    client, user = owner

    def add_events(count):
        for i in range(count):
            audit_record(actor=Actor.user(user), action=f"thing.{i}", organization=organization)

    add_events(10)
    client.get(URL)  # warm the data-key cache
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    add_events(190)
    for _ in range(20):
        MembershipFactory(organization=organization, role=Role.VIEWER)
    with CaptureQueriesContext(connection) as large:
        assert client.get(URL).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)


def test_activity_counts_the_last_30_days_and_lists_the_latest_in_one_read(owner, organization):
    import time_machine
    from django.utils import timezone

    from portal.selectors import organization_overview

    _client, user = owner
    with time_machine.travel(timezone.now() - timezone.timedelta(days=45)):
        for i in range(7):
            audit_record(actor=Actor.user(user), action=f"old.{i}", organization=organization)
    for i in range(3):
        audit_record(actor=Actor.user(user), action=f"new.{i}", organization=organization)
    audit_record(actor=Actor.system("x"), action="other.thing", organization=OrganizationFactory(slug="other"))
    with tenant_context(organization), CaptureQueriesContext(connection) as captured:
        overview = organization_overview(organization=organization)
    assert overview.events_last_30_days == 3
    assert [item.event.action for item in overview.recent_events] == ["new.2", "new.1", "new.0", "old.6", "old.5"]
    assert sum('FROM "security_auditevent"' in q["sql"] for q in captured.captured_queries) == 1


def test_activity_of_an_organisation_with_no_events_counts_none(organization):
    from portal.selectors import organization_overview

    with tenant_context(organization):
        overview = organization_overview(organization=organization)
    assert overview.events_last_30_days == 0 and overview.recent_events == []
