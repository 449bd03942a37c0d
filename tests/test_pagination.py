"""core.pagination.ShortPageCountPaginator answers as Django's Paginator does, and counts only when it must."""

from __future__ import annotations

import pytest
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from core.pagination import ShortPageCountPaginator
from core.tenancy import tenant_context
from licensing.models import Subscription
from licensing.tests.core.factories import SubscriptionFactory


def answer(paginator, method: str, number):
    """What a page request gives: the page's rows and bookkeeping, or the error Django raises."""
    try:
        page = getattr(paginator, method)(number)
    except (EmptyPage, PageNotAnInteger) as exc:
        return type(exc).__name__, str(exc)
    return (list(page), page.number, paginator.count, paginator.num_pages, page.has_next(), page.has_previous(),
            page.start_index(), page.end_index())


NUMBERS = (1, 2, 3, 4, 7, 0, -1, "1", "2", " 3", "x", "", None, "last", 1.0, 2.5)


@pytest.mark.parametrize("total", [0, 1, 4, 5, 6, 10, 11, 23])
@pytest.mark.parametrize("method", ["page", "get_page"])
def test_every_page_number_gets_djangos_answer(total, method):
    rows = list(range(total))
    for per_page in (1, 5, 10):
        for allow_empty in (True, False):
            for number in NUMBERS:
                expected = answer(Paginator(rows, per_page, allow_empty_first_page=allow_empty), method, number)
                got = answer(ShortPageCountPaginator(rows, per_page, allow_empty_first_page=allow_empty), method,
                             number)
                assert got == expected, (total, per_page, allow_empty, number)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["page", "get_page"])
def test_a_page_number_past_the_databases_largest_offset_gets_djangos_answer_not_a_database_error(method):
    # An OFFSET past a signed 64-bit integer is an error in PostgreSQL ("bigint out of range") that aborts the
    # request's transaction; the bad-input sweep sends such numbers to every list.
    subscription = SubscriptionFactory()
    with tenant_context(subscription.organization):
        rows = Subscription.objects.for_org(subscription.organization).order_by("pk")
        for number in ("99999999999999999999999", 2**62, 2**63 // 5):
            expected = answer(Paginator(rows, 5), method, number)
            assert answer(ShortPageCountPaginator(rows, 5), method, number) == expected
            assert Subscription.objects.for_org(subscription.organization).count() == 1  # the transaction lives


def test_with_orphans_it_is_djangos_paginator():
    rows = list(range(12))
    for number in (1, 2, 3):
        assert answer(ShortPageCountPaginator(rows, 5, orphans=2), "page", number) == answer(
            Paginator(rows, 5, orphans=2), "page", number)


@pytest.mark.django_db
def test_a_short_page_is_one_query_and_a_full_one_adds_the_count():
    subscription = SubscriptionFactory()
    organization = subscription.organization
    for _ in range(2):
        SubscriptionFactory(organization=organization)
    with tenant_context(organization):
        listed = Subscription.objects.for_org(organization).order_by("pk")
        with CaptureQueriesContext(connection) as short:
            page = ShortPageCountPaginator(listed, 5).get_page("1")
            assert len(page) == 3 and page.paginator.count == 3 and not page.has_next()
        with CaptureQueriesContext(connection) as full:
            page = ShortPageCountPaginator(listed, 2).get_page("1")
            assert len(page) == 2 and page.paginator.count == 3 and page.has_next()
    assert len(short.captured_queries) == 1 and "COUNT" not in short.captured_queries[0]["sql"]
    assert len(full.captured_queries) == 2  # the page's rows, read once, and the count


@pytest.mark.django_db
def test_the_api_lists_a_short_page_without_a_count_and_with_the_same_answer():
    subscription = SubscriptionFactory()
    SubscriptionFactory(organization=subscription.organization)
    SubscriptionFactory()  # another organisation's
    client = api_client_for(subscription.organization, Role.VIEWER)
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/api/v1/subscriptions/").json()
    assert body["count"] == 2 and len(body["results"]) == 2 and body["next"] is None
    counted = 'COUNT(*) AS "__count" FROM "licensing_subscription"'
    assert not [q for q in captured.captured_queries if counted in q["sql"]]
    one_each = client.get("/api/v1/subscriptions/?page_size=1").json()
    assert one_each["count"] == 2 and one_each["next"] and len(one_each["results"]) == 1
    second = client.get("/api/v1/subscriptions/?page_size=1&page=2").json()
    assert second["count"] == 2 and second["previous"] and second["next"] is None
    assert client.get("/api/v1/subscriptions/?page=3").status_code == 404
