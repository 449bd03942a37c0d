"""core.tables.Table: whitelisted sorting, safe filters and search, pagination that never fails."""

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from accounts.models import Organization
from accounts.tests.factories import OrganizationFactory
from core.tables import Column, Filter, Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs():
    names = ["Delta", "Alpha", "Charlie", "Bravo", "Echo"]
    return [
        OrganizationFactory(legal_name=name, slug=name.lower(), country="US" if i % 2 else "GB")
        for i, name in enumerate(names)
    ]


def make_table(query: str = "", **kwargs):
    # The slug stands in for the name: organisation names are encrypted and cannot be sorted in SQL.
    request = RequestFactory().get("/orgs/" + (f"?{query}" if query else ""))
    defaults = {
        "columns": [
            Column("slug", "Name", sortable=True),
            Column("time_zone", "Time zone"),
            Column("country", "Country", sortable=True, order_by=["country", "slug"]),
        ],
        "filters": [Filter("country", "Country", [("US", "United States"), ("GB", "United Kingdom")])],
        "search": lambda qs, q: qs.filter(slug__icontains=q),
        "per_page": 2,
    }
    defaults.update(kwargs)
    return Table(request, Organization.objects.all(), **defaults)


def names(table):
    return [row.object.legal_name for row in table.rows]


def test_sorts_by_a_sortable_column_both_ways(orgs):
    assert names(make_table("sort=slug", per_page=10)) == ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    assert names(make_table("sort=-slug", per_page=10))[0] == "Echo"


def test_sort_uses_the_declared_order_fields(orgs):
    assert names(make_table("sort=country", per_page=10)) == ["Charlie", "Delta", "Echo", "Alpha", "Bravo"]


@pytest.mark.parametrize(
    "bad", ["time_zone", "-time_zone", "password", "organization__memberships__user__password", "", "--x"]
)
def test_unknown_or_unsortable_fields_are_ignored(orgs, bad):
    table = make_table(f"sort={bad}", per_page=10)
    assert table.sort == ""
    assert len(table.rows) == 5


def test_default_sort_applies_when_the_param_is_bad(orgs):
    table = make_table("sort=hash", default_sort="-slug", per_page=10)
    assert table.sort == "-slug"


def test_paginates_and_survives_bad_page_numbers(orgs):
    table = make_table("sort=slug&page=2")
    assert names(table) == ["Charlie", "Delta"]
    assert table.page_obj.paginator.num_pages == 3
    for page in ["abc", "-1", "999", "1e9", ""]:
        table = make_table(f"sort=slug&page={page}")
        assert len(table.rows) in (1, 2)


def test_filter_applies_only_declared_choices(orgs):
    assert len(make_table("country=US", per_page=10).rows) == 2
    unfiltered = make_table("country=FR", per_page=10)
    assert len(unfiltered.rows) == 5
    assert not unfiltered.is_filtered


def test_search_is_trimmed_and_bounded(orgs):
    table = make_table("q=%20%20char%20%20", per_page=10)
    assert names(table) == ["Charlie"]
    long = make_table("q=" + "x" * 5000)
    assert len(long.query) == 200
    assert long.rows == []


def test_search_ignored_when_table_has_none(orgs):
    table = make_table("q=char", search=None, per_page=10)
    assert table.query == "" and len(table.rows) == 5


def test_header_links_toggle_direction_and_reset_page(orgs):
    table = make_table("sort=slug&page=2&country=US")
    name_header = table.headers[0]
    assert name_header.aria_sort == "ascending"
    assert "sort=-slug" in name_header.sort_url
    assert "page=" not in name_header.sort_url and "country=US" in name_header.sort_url
    assert table.headers[1].sort_url is None  # the time zone is not sortable
    assert table.headers[2].aria_sort == "none"


def test_rendered_table_is_accessible_and_keeps_the_query_in_pagination(orgs):
    table = make_table("sort=slug&country=GB&q=a")
    html = render_to_string("components/table.html", {"table": table}, request=table.request)
    assert '<th scope="col" aria-sort="ascending">' in html
    assert 'hx-target="#table-results"' in html and 'hx-push-url="true"' in html
    assert "country=GB" in html and "q=a" in html
    assert 'role="status"' in html and "Showing 1" in html
    assert 'for="table-q"' in html and 'id="table-q"' in html


def test_fragment_contains_region_and_out_of_band_updates_only(orgs):
    table = make_table("sort=slug")
    html = render_to_string("components/table.html#fragment", {"table": table}, request=table.request)
    assert html.strip().startswith('<div id="table-results"')
    assert 'id="table-status"' in html and 'hx-swap-oob="true"' in html
    assert "<form" not in html


def test_empty_results_explain_what_to_do(orgs):
    table = make_table("q=zzz")
    html = render_to_string("components/table.html", {"table": table}, request=table.request)
    assert "No matches" in html and "Clear filters" in html
