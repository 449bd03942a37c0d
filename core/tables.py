"""Server-side tables: sorting, filtering, search and pagination from the query string.

Only declared columns can be sorted and only declared filter choices are applied,
so a crafted ``?sort=password`` or ``?action=<anything>`` is ignored rather than
reaching the ORM. Bad input never raises: it falls back to the defaults.

A page includes ``components/table_controls.html`` (search and filters, outside
the refreshed region so typing keeps focus) and ``components/table.html`` (the
results region). htmx requests that target the region get only the region back::

    table = Table(request, queryset, columns=[...], filters=[...], search=search_fn)
    if table.is_fragment_request:
        return table.fragment_response()
    return render(request, "page.html", {"table": table})
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.paginator import Page
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers

from core.pagination import ShortPageCountPaginator

MAX_SEARCH_LENGTH = 200


def search_text(raw: str) -> str:
    """What a search box's text means: control characters (NUL, which PostgreSQL text cannot hold,
    tabs, newlines) become spaces, runs of spaces one, and at most MAX_SEARCH_LENGTH characters.
    Letters of any script, right-to-left text and combining marks are kept as typed."""
    spaced = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in raw[: MAX_SEARCH_LENGTH * 4])
    return " ".join(spaced.split())[:MAX_SEARCH_LENGTH].strip()


@dataclass(frozen=True)
class Column:
    """One column. ``accessor`` is an attribute path ("user.email") or a callable(row).

    ``order_by`` names the database field(s) to sort by; it defaults to ``name``.
    ``kind`` picks the cell rendering: text, datetime, number, badge or code.
    ``link`` is an optional callable(row) returning a URL for the cell.
    """

    name: str
    label: str
    sortable: bool = False
    accessor: str | Callable[[Any], Any] | None = None
    order_by: str | Sequence[str] | None = None
    kind: str = "text"
    link: Callable[[Any], str | None] | None = None

    def value(self, row) -> Any:
        accessor = self.accessor if self.accessor is not None else self.name
        if callable(accessor):
            return accessor(row)
        value = row
        for part in accessor.split("."):
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            if value is None:
                return None
        return value() if callable(value) else value

    def order_fields(self, descending: bool) -> list[str]:
        fields = self.order_by or self.name
        fields = [fields] if isinstance(fields, str) else list(fields)
        if not descending:
            return fields
        return [f[1:] if f.startswith("-") else f"-{f}" for f in fields]


@dataclass(frozen=True)
class Filter:
    """A select filter. Only values listed in ``choices`` are applied.

    ``lookup`` is the ORM lookup (defaults to ``name``); ``method(queryset, value)``
    replaces it for anything more involved.
    """

    name: str
    label: str
    choices: Sequence[tuple[str, str]]
    lookup: str | None = None
    method: Callable[[QuerySet, str], QuerySet] | None = None
    empty_label: str = "All"

    def apply(self, queryset: QuerySet, value: str) -> QuerySet:
        if self.method is not None:
            return self.method(queryset, value)
        return queryset.filter(**{self.lookup or self.name: value})


@dataclass(frozen=True)
class Cell:
    column: Column
    value: Any
    url: str | None

    @property
    def status(self) -> str:
        """For badge cells: the accessor may return (status, label) or just the status."""
        return self.value[0] if isinstance(self.value, tuple) else self.value

    @property
    def label(self) -> str:
        return self.value[1] if isinstance(self.value, tuple) else ""


@dataclass
class Row:
    object: Any
    cells: list[Cell] = field(default_factory=list)


@dataclass(frozen=True)
class HeaderCell:
    column: Column
    sort_url: str | None
    aria_sort: str | None


class Table:
    fragment_template = "components/table.html#fragment"

    def __init__(
        self,
        request,
        queryset: QuerySet,
        *,
        columns: Sequence[Column],
        filters: Sequence[Filter] = (),
        search: Callable[[QuerySet, str], QuerySet] | None = None,
        search_label: str = "Search",
        per_page: int = 25,
        default_sort: str | None = None,
        table_id: str = "table",
        caption: str = "",
        empty_title: str = "Nothing here yet",
        empty_message: str = "",
        prepare: Callable[[list], None] | None = None,
    ):
        self.request = request
        self.columns = list(columns)
        self.filters = list(filters)
        self.search = search
        self.search_label = search_label
        self.per_page = per_page
        self.table_id = table_id
        self.caption = caption
        self.empty_title = empty_title
        self.empty_message = empty_message
        self._prepare = prepare
        self._sortable = {c.name: c for c in self.columns if c.sortable}

        params = request.GET
        self.query = search_text(params.get("q", "")) if search else ""
        self.filter_values: dict[str, str] = {}
        for flt in self.filters:
            raw = params.get(flt.name, "")
            if raw in {value for value, _ in flt.choices}:
                self.filter_values[flt.name] = raw
        self.sort = self._parse_sort(params.get("sort", ""), default_sort)

        queryset = self._filter(queryset)
        self.queryset = queryset  # filtered and searched, unsorted: for exports and counts
        self.sorted_queryset = self._order(queryset)

    def _parse_sort(self, raw: str, default: str | None) -> str:
        for candidate in (raw, default or ""):
            name = candidate[1:] if candidate.startswith("-") else candidate
            if name in self._sortable:
                return candidate
        return ""

    def _filter(self, queryset: QuerySet) -> QuerySet:
        for flt in self.filters:
            value = self.filter_values.get(flt.name)
            if value:
                queryset = flt.apply(queryset, value)
        if self.query and self.search is not None:
            queryset = self.search(queryset, self.query)
        return queryset

    def _order(self, queryset: QuerySet) -> QuerySet:
        if not self.sort:
            return queryset
        descending = self.sort.startswith("-")
        column = self._sortable[self.sort.lstrip("-")]
        # The primary key last makes the order total, so pages neither repeat nor skip rows.
        return queryset.order_by(*column.order_fields(descending), "-pk" if descending else "pk")

    @property
    def searchable(self) -> bool:
        return self.search is not None

    @property
    def is_filtered(self) -> bool:
        return bool(self.query or self.filter_values)

    @cached_property
    def page_obj(self) -> Page:
        paginator = ShortPageCountPaginator(self.sorted_queryset, self.per_page)
        return paginator.get_page(self.request.GET.get("page"))

    @cached_property
    def rows(self) -> list[Row]:
        objects = list(self.page_obj.object_list)
        if self._prepare is not None:
            self._prepare(objects)
        rows = []
        for obj in objects:
            cells = [Cell(col, col.value(obj), col.link(obj) if col.link else None) for col in self.columns]
            rows.append(Row(obj, cells))
        return rows

    @cached_property
    def headers(self) -> list[HeaderCell]:
        headers = []
        current = self.sort.lstrip("-")
        descending = self.sort.startswith("-")
        for column in self.columns:
            if not column.sortable:
                headers.append(HeaderCell(column, None, None))
                continue
            if column.name == current:
                next_sort = column.name if descending else f"-{column.name}"
                aria = "descending" if descending else "ascending"
            else:
                next_sort, aria = column.name, "none"
            headers.append(HeaderCell(column, self.url_with(sort=next_sort, page=None), aria))
        return headers

    @property
    def filter_controls(self) -> list[dict]:
        return [
            {"filter": flt, "value": self.filter_values.get(flt.name, ""), "id": f"{self.table_id}-{flt.name}"}
            for flt in self.filters
        ]

    @property
    def region_id(self) -> str:
        return f"{self.table_id}-results"

    def url_with(self, **changes) -> str:
        """The current URL with some query parameters changed (None removes one)."""
        params = self.request.GET.copy()
        for key, value in changes.items():
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = value
        encoded = params.urlencode()
        return f"{self.request.path}?{encoded}" if encoded else self.request.path

    @property
    def is_fragment_request(self) -> bool:
        htmx = getattr(self.request, "htmx", None)
        if not htmx or htmx.boosted or htmx.history_restore_request:
            return False
        return htmx.target == self.region_id

    def fragment_response(self, extra_context: dict | None = None) -> TemplateResponse:
        response = TemplateResponse(
            self.request, self.fragment_template, {"table": self, "fragment": True, **(extra_context or {})}
        )
        patch_vary_headers(response, ["HX-Request", "HX-Target"])
        return response
