"""The overview and the licenses page read each table they need once: the selectors that derive figures from the
subscriptions give the same answers from one shared read (``organization_subscriptions``) as from their own
queries, "buy more" links included, and the over-assigned pools are picked from the seat pools already read."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from core.tenancy import tenant_context
from licensing.models import LicenseAssignment, Subscription, TenantSku
from licensing.selectors import overview as selectors_overview
from licensing.selectors import seats as selectors_seats
from licensing.selectors import usage as selectors_usage
from licensing.services import assignments as assignment_services
from licensing.tests.core.factories import DirectoryUserFactory, SkuFactory, SubscriptionFactory, TenantSkuFactory

pytestmark = pytest.mark.django_db

Status = Subscription.Status


def subscriptions_of_every_kind(organization):
    """Two pools bought several ways, one bought nowhere, and subscriptions no pool matches."""
    now = timezone.now()
    premium, e3, _graph_only = (TenantSkuFactory(organization=organization, purchased=n) for n in (40, 12, 7))
    premium_sku = SkuFactory(provisioning_id=str(premium.sku_id).upper())  # Graph's skuId in another case
    e3_sku = SkuFactory(provisioning_id=str(e3.sku_id))
    made = [
        {"sku": premium_sku, "quantity": 10, "currency": "EUR", "unit_price": Decimal("20.00")},
        {"sku": premium_sku, "quantity": 15, "currency": "USD", "unit_price": Decimal("252.00"),
         "billing_cycle": "annual", "start_date": now - timedelta(days=40)},
        {"sku": premium_sku, "quantity": 3, "status": Status.PENDING, "start_date": None, "commitment_end": None,
         "cancellation_allowed_until": None},
        {"sku": premium_sku, "quantity": 4, "status": Status.SUSPENDED},
        {"sku": premium_sku, "quantity": 9, "status": Status.DELETED},
        {"sku": e3_sku, "quantity": 12, "term_duration": "P1M", "commitment_end": now + timedelta(days=12)},
        {"sku": e3_sku, "quantity": 2, "status": Status.SUSPENDED, "auto_renew": False,
         "commitment_end": now + timedelta(days=3)},
        {"sku": SkuFactory(provisioning_id=""), "quantity": 5},
        {"sku": None, "quantity": 6, "catalog_item_id": "custom", "product_title": "Custom"},
    ]
    for extra in made:
        SubscriptionFactory(organization=organization, **extra)
    return premium, e3


@time_machine.travel("2026-05-14 09:00:00+00:00", tick=False)
def test_every_figure_is_the_same_from_the_shared_read(organization):
    pools = subscriptions_of_every_kind(organization)
    with tenant_context(organization):
        shared = selectors_seats.organization_subscriptions(organization)
        assert len(shared) == 9
        for in_flight in (True, False):
            assert selectors_seats.purchased_by_pool(organization, pools, in_flight=in_flight) == \
                selectors_seats.purchased_by_pool(organization, pools, in_flight=in_flight, subscriptions=shared)
        assert selectors_usage.monthly_unit_prices(organization) == \
            selectors_usage.monthly_unit_prices(organization, subscriptions=shared)
        assert selectors_usage.suspended_seats_by_sku(organization) == \
            selectors_usage.suspended_seats_by_sku(organization, subscriptions=shared)
        assert selectors_overview.monthly_spend(organization) == \
            selectors_overview.monthly_spend(organization, subscriptions=shared)
        own_calendar = selectors_usage.renewal_calendar(organization, months=12)
        assert own_calendar and own_calendar == \
            selectors_usage.renewal_calendar(organization, months=12, subscriptions=shared)
        rows = selectors_usage.pool_rows(organization)
        prices = selectors_usage.monthly_unit_prices(organization)
        assert [(r.sku.pk, r.purchased, r.assigned, r.available, r.unit_price_monthly, r.currency, r.suspended)
                for r in rows] == [
            (r.sku.pk, r.purchased, r.assigned, r.available, r.unit_price_monthly, r.currency, r.suspended)
            for r in _pool_rows_each_from_its_own_query(organization, prices)]
        wanted = dict.fromkeys(pools, 3)
        urls = assignment_services.buy_more_urls(organization, wanted)
        assert urls == assignment_services.buy_more_urls(organization, wanted, subscriptions=shared)
        assert all("#change-seats" in url for url in urls.values())
        premium_row = next(r for r in rows if r.sku.pk == pools[0].pk)
        assert (premium_row.purchased, premium_row.suspended, premium_row.currency) == (29, 4, "USD")


def _pool_rows_each_from_its_own_query(organization, prices):
    """pool_rows as it was before the shared read: every figure from its selector's own query."""
    suspended = selectors_usage.suspended_seats_by_sku(organization)
    pools = list(selectors_usage.seat_pools(organization))
    purchased = selectors_seats.purchased_by_pool(organization, pools, in_flight=False)
    rows = []
    for sku in pools:
        price, currency = prices.get(str(sku.sku_id).lower(), (None, ""))
        held = max(sku.suspended, suspended.get(str(sku.sku_id).lower(), 0))
        rows.append(selectors_usage.PoolRow(
            sku=sku, purchased=purchased[sku.pk] + held, assigned=sku.assigned_count,
            available=purchased[sku.pk] - sku.assigned_count, unit_price_monthly=price, currency=currency,
            unassigned_cost_monthly=None, suspended=held))
    return rows


@pytest.mark.parametrize("role", [Role.VIEWER, Role.LICENSE_ADMIN])
@pytest.mark.parametrize("page", ["dashboard:overview", "licensing:licenses"])
def test_the_page_reads_the_subscriptions_table_once(organization, member_client, page, role):
    _premium, e3 = subscriptions_of_every_kind(organization)
    with tenant_context(organization):  # E3 full: a license admin is offered to buy more, linked to a subscription
        for _ in range(12):
            LicenseAssignment.objects.create(organization=organization, sku=e3, state=LicenseAssignment.State.ASSIGNED,
                                             user=DirectoryUserFactory(organization=organization))
    browser, _ = member_client(role)
    url = reverse(page, kwargs={"org_slug": organization.slug})
    browser.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(url)
    assert response.status_code == 200
    reads = [q["sql"] for q in captured.captured_queries if 'FROM "licensing_subscription"' in q["sql"]]
    assert len(reads) == 1, reads
    if role == Role.LICENSE_ADMIN:
        assert "#change-seats" in response.content.decode()


@pytest.mark.parametrize("page", ["dashboard:overview", "licensing:licenses"])
def test_over_assigned_pools_are_listed_by_name_from_the_pools_read_once(organization, member_client, page):
    pools = {name: TenantSkuFactory(organization=organization, display_name=name)
             for name in ("Visio Plan 2", "Microsoft 365 E3", "project Online", "Teams Rooms")}
    TenantSkuFactory(display_name="Another organisation's", over_assigned_since=timezone.now(), over_assigned_by=9)
    with tenant_context(organization):
        for name, by in (("Visio Plan 2", 2), ("Microsoft 365 E3", 1), ("project Online", 5)):
            TenantSku.objects.filter(pk=pools[name].pk).update(over_assigned_since=timezone.now(), over_assigned_by=by)
        in_database_order = list(selectors_seats.over_assigned_pools(organization))
    browser, _ = member_client(Role.VIEWER)
    url = reverse(page, kwargs={"org_slug": organization.slug})
    browser.get(url)
    with CaptureQueriesContext(connection) as captured:
        html = browser.get(url).content.decode()
    assert sum('FROM "licensing_tenantsku"' in q["sql"] for q in captured.captured_queries) == 1
    listed = re.findall(r'<li id="over-assigned-([^"]+)">([^:]+): (\d+) more', html)
    assert listed == [(str(p.pk), p.label, str(p.over_assigned_by)) for p in in_database_order]
    assert len(listed) == 3 and "Another organisation" not in html


@pytest.mark.django_db(transaction=True)
def test_the_pages_show_the_same_as_the_role_row_level_security_binds(organization, member_client, settings):
    # Tests connect as the tables' owner, which row-level security does not bind; production connects as a role
    # it binds. The shared reads run in the page's tenant context, so that role must see every figure too.
    from tests.test_rls import ProductionRoles

    if connection.vendor != "postgresql":
        pytest.skip("row-level security needs PostgreSQL")
    _premium, e3 = subscriptions_of_every_kind(organization)
    with tenant_context(organization):
        TenantSku.objects.filter(pk=e3.pk).update(over_assigned_since=timezone.now(), over_assigned_by=1)
    browser, _ = member_client(Role.LICENSE_ADMIN)

    def pages():
        shown = []
        for page in ("dashboard:overview", "licensing:licenses"):
            html = browser.get(reverse(page, kwargs={"org_slug": organization.slug})).content.decode()
            shown.append(re.sub(r'(nonce="|value="|"X-CSRFToken": ")[A-Za-z0-9+/=_-]{20,}', r"\1-", html))
        return shown

    as_owner = pages()
    with ProductionRoles(settings):
        as_application = pages()
    assert as_application == as_owner
    assert 'id="over-assigned"' in as_owner[0] and 'id="over-assigned"' in as_owner[1]
    assert "USD" in as_owner[0] and "EUR" in as_owner[0]  # spend per currency, from the shared read


def _spread_over_every_live_kind(organization):
    """Pools bought several ways (a live subscription with no start date among them) and more licenses assigned
    than one pool's subscriptions hold, so that the seats' spreading depends on the subscriptions' order."""
    premium, e3 = subscriptions_of_every_kind(organization)
    with tenant_context(organization):
        for sku, count in ((premium, 30), (e3, 5)):
            for _ in range(count):
                LicenseAssignment.objects.create(organization=organization, sku=sku, user=DirectoryUserFactory(
                    organization=organization), state=LicenseAssignment.State.ASSIGNED)


def test_seats_are_spread_the_same_over_a_list_page_holding_every_subscription(organization):
    _spread_over_every_live_kind(organization)
    with tenant_context(organization):
        own = selectors_usage.assigned_seats_by_subscription(organization)
        every = list(Subscription.objects.for_org(organization).select_related("sku"))
        assert len(every) == 9 and sum(own.values()) == 35
        for order in (every, every[::-1], sorted(every, key=lambda s: s.quantity)):
            assert selectors_usage.assigned_seats_by_subscription(organization, subscriptions=order) == own


@pytest.mark.parametrize("query", ["", "?status=active", "?q=Custom", "?sort=-seats"])
def test_the_subscriptions_page_reads_its_subscriptions_once_when_it_holds_them_all(organization, member_client,
                                                                                    query):
    _spread_over_every_live_kind(organization)
    with tenant_context(organization):
        own = selectors_usage.assigned_seats_by_subscription(organization)
    browser, _ = member_client(Role.VIEWER)
    url = reverse("licensing:subscriptions", kwargs={"org_slug": organization.slug}) + query
    browser.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(url)
    reads = [q["sql"] for q in captured.captured_queries if 'FROM "licensing_subscription"' in q["sql"]]
    assert len(reads) == (1 if query in ("", "?sort=-seats") else 2), reads
    shown = {row["subscription"].pk: row["assigned"] for row in response.context["rows"]}
    assert shown and shown == {pk: own.get(pk, 0) for pk in shown}


@pytest.mark.parametrize(("query", "reads"), [("", 1), ("?ordering=-seats", 1), ("?page_size=4", 3),
                                              ("?page_size=4&page=3", 2), ("?status=active", 2)])
def test_the_subscriptions_api_reads_its_subscriptions_once_when_its_page_holds_them_all(organization, query,
                                                                                        reads):
    from accounts.tests.api_support import api_client_for

    _spread_over_every_live_kind(organization)
    with tenant_context(organization):
        own = selectors_usage.assigned_seats_by_subscription(organization)
    client = api_client_for(organization)
    with CaptureQueriesContext(connection) as captured:
        body = client.get(f"/api/v1/subscriptions/{query}").json()
    sql = [q["sql"] for q in captured.captured_queries if 'FROM "licensing_subscription"' in q["sql"]]
    assert len(sql) == reads, sql
    shown = {uuid.UUID(item["id"]): item["assigned_seats"] for item in body["results"]}
    assert shown and shown == {pk: own.get(pk, 0) for pk in shown}
