"""The notifications bell: on every signed-in page, with this person's unread count, linking to the list."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from core.tenancy import tenant_context
from licensing.models import Notification
from licensing.services import notifications as notification_services

pytestmark = pytest.mark.django_db


def unread_on(page: str) -> int:
    found = re.search(r'class="bell-count[^"]*" data-unread="(\d+)"', page)
    assert found, "no bell on the page"
    return int(found.group(1))


def notify(organization, user, n: int, **extra):
    with tenant_context(organization):
        return notification_services.notification_send(
            organization=organization, recipients=[user], kind=Notification.Kind.PROVISIONING_FAILED,
            title=f"Something {n}", dedupe_key=f"test:{n}", email=False, **extra)


def test_the_bell_counts_unread_on_every_page_and_links_to_the_list(organization, member_client):
    browser, user = member_client(Role.LICENSE_ADMIN)
    someone_else = MembershipFactory(organization=organization, role=Role.OWNER).user
    notify(organization, user, 1)
    notify(organization, user, 2)
    notify(organization, someone_else, 3)
    slug = organization.slug
    for url in (reverse("dashboard:overview", kwargs={"org_slug": slug}),
                reverse("licensing:subscriptions", kwargs={"org_slug": slug}),
                reverse("accounts:mfa_devices")):
        page = browser.get(url).content.decode()
        assert unread_on(page) == 2, url
        assert f'href="{reverse("licensing:notifications", kwargs={"org_slug": slug})}"' in page
        assert 'aria-label="Notifications, 2 unread"' in page

    fragment = browser.post(reverse("licensing:notifications_read", kwargs={"org_slug": slug}),
                            HTTP_HX_REQUEST="true").content.decode()
    assert unread_on(fragment) == 0
    notify(organization, user, 4)
    bell = browser.get(reverse("licensing:notifications_bell", kwargs={"org_slug": slug}))
    assert unread_on(bell.content.decode()) == 1


def test_no_bell_when_signed_out(client):
    assert 'id="notification-bell"' not in client.get(reverse("accounts:login")).content.decode()


def test_no_bell_before_the_second_factor(organization, client):
    user = MembershipFactory(organization=organization, role=Role.OWNER).user
    notify(organization, user, 9)
    client.force_login(user)  # password only: the MFA page is as far as this session goes
    page = client.get(reverse("accounts:mfa_verify")).content.decode()
    assert 'id="notification-bell"' not in page and "Something 9" not in page


@pytest.mark.django_db(transaction=True)
def test_the_bell_counts_unread_as_the_application_role_that_row_level_security_binds(organization, member_client,
                                                                                      settings):
    # Production connects as a role that does not own the tables (deploy/postgres-init.sh), and
    # notifications are under row-level security: the bell must read inside a tenant scope (the page's,
    # which the template renders in) or it shows nothing there. The session's second factor is found on
    # the system role's own connection (decision 035), as in production.
    from django.db import connection

    from tests.test_rls import ProductionRoles

    if connection.vendor != "postgresql":
        pytest.skip("row-level security needs PostgreSQL")
    browser, user = member_client(Role.LICENSE_ADMIN)
    notify(organization, user, 1)
    with ProductionRoles(settings):
        page = browser.get(reverse("dashboard:overview", kwargs={"org_slug": organization.slug})).content.decode()
    assert unread_on(page) == 1


@pytest.mark.django_db(transaction=True)
def test_an_organisation_page_and_its_bell_are_one_transaction_with_one_tenant_setting(organization, member_client):
    # The view's tenant context is the request's transaction and the page renders inside it (accounts.org_views):
    # no savepoint around the view, no second transaction for the bell, no set_config restoring an empty scope.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    browser, user = member_client(Role.LICENSE_ADMIN)
    notify(organization, user, 1)
    url = reverse("dashboard:overview", kwargs={"org_slug": organization.slug})
    browser.get(url)  # the first visit also writes the session
    with CaptureQueriesContext(connection) as captured:
        page = browser.get(url).content.decode()
    statements = [query["sql"] for query in captured.captured_queries]
    assert unread_on(page) == 1
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert sum(sql.split()[0] == "BEGIN" for sql in statements) == 1  # SQLite's is "BEGIN IMMEDIATE"
    if connection.vendor == "postgresql":
        assert sum("set_config" in sql for sql in statements) == 1


def test_the_bell_counts_every_unread_notification_in_the_query_that_reads_the_latest_five(organization,
                                                                                           member_client):
    # The count is a window over the unread rows, evaluated before the LIMIT of five: more unread than are
    # listed still counts them all, read ones and other people's count none, and the bell reads the table once.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    browser, user = member_client(Role.LICENSE_ADMIN)
    someone_else = MembershipFactory(organization=organization, role=Role.OWNER).user
    for n in range(7):
        notify(organization, user, n)
    notify(organization, someone_else, 100)
    with tenant_context(organization):
        Notification.objects.filter(recipient=user, title="Something 0").update(read_at="2026-01-01T00:00:00Z")
    url = reverse("licensing:subscriptions", kwargs={"org_slug": organization.slug})
    browser.get(url)
    with CaptureQueriesContext(connection) as captured:
        page = browser.get(url).content.decode()
    assert unread_on(page) == 6
    assert 'aria-label="Notifications, 6 unread"' in page
    listed = re.findall(r"Something (\d+)", page)
    assert len(listed) == 5 and "0" not in listed and "100" not in listed
    assert sum('FROM "licensing_notification"' in q["sql"] for q in captured.captured_queries) == 1

    with tenant_context(organization):
        Notification.objects.filter(recipient=user).update(read_at="2026-01-01T00:00:00Z")
    page = browser.get(url).content.decode()
    assert unread_on(page) == 0 and "Nothing new" in page
