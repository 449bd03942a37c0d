"""Input discovery and requests for the bad-input sweep (tests/test_bad_input_sweep.py).

What each route accepts is found, not listed, so a new page is covered by construction:

- dashboard pages: the route is requested (with the organisation's own objects for its ids), and
  its HTML is read for forms. A GET form's fields, and the query parameters of links back to the
  same page (filters, sort, period), are the page's query parameters; a POST form's fields, with
  the values the page filled in, are what its action accepts. A view's ``form_class`` adds its fields.
- API routes: the OpenAPI schema drf-spectacular builds from the views and serializers names each
  operation's query parameters and request-body properties.

Every parameter then gets each of BAD_VALUES (NUL, 10 KB, right-to-left with combining marks, a deeply
nested JSON text, a number too large for any column): alone (the others as the page filled them in) and all
together. Nothing may answer 5xx or raise; a streamed response (CSV) is read to its end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.urls import Resolver404, resolve

BAD_VALUES = {
    "NUL byte": "ab\x00cd",
    "10 KB string": ("Fabrikam-" * 1200)[:10_240],
    # One value for both kinds of text that renders unlike its code points (an override to right-to-left with
    # Hebrew and Arabic, then letters under stacked combining marks): each field gets both in one request.
    "right-to-left and combining marks": "\u202egnp.exe\u202c \u05e9\u05dc\u05d5\u05dd "
    "\u0645\u0631\u062d\u0628\u0627 \u200f(1) "
    "Z\u0351\u0359\u036f\u0300\u0301a\u0308\u0308\u0308 e\u0301\u0301\u0301\u0301 "
    "\u0e01\u0e34\u0e4a",
    # A field that parses JSON (filters, settings) must not recurse on it; any other field sees text.
    "deep JSON text": "[" * 2000 + "]" * 2000,
    # The wrong type for a number field: beyond 64 bits, and beyond a float.
    "number overflow": "99999999999999999999999",
}
# Not typed by people: the CSRF token (file inputs are posted as uploads, see Form.files).
SKIPPED_FIELDS = {"csrfmiddlewaretoken"}
DEEP_JSON = "[" * 5000 + "]" * 5000


@dataclass
class Form:
    method: str
    action: str  # an absolute path, without the query string
    fields: dict[str, str] = field(default_factory=dict)  # name -> the value the page filled in
    files: set[str] = field(default_factory=set)


class _FormParser(HTMLParser):
    """Forms (with their fields' current values) and same-page link query parameters."""

    def __init__(self, page_path: str):
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[Form] = []
        self.link_params: dict[str, str] = {}
        self._form: Form | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            action = attrs.get("action") or self.page_path
            parts = urlsplit(action)
            path = parts.path or self.page_path
            self._form = Form((attrs.get("method") or "get").lower(), path)
            self.forms.append(self._form)
            # Query parameters in a form's action are posted along with it.
            self._form.fields.update(dict(parse_qsl(parts.query, keep_blank_values=True)))
        elif tag == "a" and attrs.get("href"):
            parts = urlsplit(attrs["href"])
            if (parts.path or self.page_path) == self.page_path and parts.query:
                for key, value in parse_qsl(parts.query, keep_blank_values=True):
                    self.link_params.setdefault(key, value)
        elif self._form is None:
            return
        elif tag == "input" and attrs.get("name"):
            kind = (attrs.get("type") or "text").lower()
            name = attrs["name"]
            if kind == "file":
                self._form.files.add(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in attrs or name not in self._form.fields:
                    self._form.fields[name] = attrs.get("value", "on")
            elif kind not in ("submit", "button", "image", "reset"):
                self._form.fields[name] = attrs.get("value") or ""
        elif tag == "button" and attrs.get("name"):
            self._form.fields.setdefault(attrs["name"], attrs.get("value") or "")
        elif tag == "select" and attrs.get("name"):
            self._select, self._select_first = attrs["name"], None
            self._form.fields.setdefault(self._select, "")
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select_first is None or "selected" in attrs:
                self._select_first = value
                self._form.fields[self._select] = value
        elif tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self._form.fields[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea] += data


def read_page(html: str, page_path: str) -> tuple[list[Form], dict[str, str]]:
    parser = _FormParser(page_path)
    parser.feed(html)
    forms = [f for f in parser.forms if _is_ours(f.action)]
    return forms, parser.link_params


def _is_ours(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def view_form_fields(callback) -> dict[str, str]:
    """The fields of a FormView's ``form_class`` (empty values), when the view names one."""
    view = getattr(callback, "view_class", None)
    form_class = getattr(view, "form_class", None)
    if form_class is None:
        return {}
    try:
        return dict.fromkeys(form_class.base_fields, "")
    except AttributeError:
        return {}


def body(response) -> bytes:
    """The whole response; a streamed one (CSV) is consumed, so an error mid-stream surfaces here."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def check(client, method: str, path: str, label: str, failures: list[str], **kwargs) -> int | None:
    """Send one request; record a 5xx or an exception. Returns the status (None when it raised)."""
    try:
        response = getattr(client, method)(path, **kwargs)
        body(response)
    except Exception as exc:  # the request crashed the view: reported with the others
        failures.append(f"{label}: {method.upper()} {path} raised {type(exc).__name__}: {str(exc)[:160]}")
        return None
    if response.status_code >= 500:
        failures.append(f"{label}: {method.upper()} {path} answered {response.status_code}")
    return response.status_code


def bad_variants(fields: dict[str, str], names: list[str] | None = None):
    """(description, data) pairs: each named field bad alone (the others as filled in), then all bad."""
    names = [n for n in (names if names is not None else list(fields)) if n not in SKIPPED_FIELDS]
    for kind, value in BAD_VALUES.items():
        for name in names:
            yield f"{name}={kind}", {**fields, name: value}
        if len(names) > 1:
            yield f"all fields={kind}", {**fields, **dict.fromkeys(names, value)}


def query_string(data: dict[str, str]) -> str:
    return urlencode(data)


# --- the API, from its OpenAPI schema ------------------------------------------------------------


@dataclass
class Operation:
    path: str  # the schema's path template, e.g. /api/v1/subscriptions/{id}/
    method: str
    query_params: list[str]
    body_fields: list[str]
    path_params: list[str]


def api_operations() -> list[Operation]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for path, methods in schema["paths"].items():
        for method, spec in methods.items():
            params = spec.get("parameters", [])
            query = [p["name"] for p in params if p.get("in") == "query"]
            in_path = [p["name"] for p in params if p.get("in") == "path"]
            body_fields = []
            for media in spec.get("requestBody", {}).get("content", {}).values():
                body_fields += _properties(media.get("schema", {}), components)
            operations.append(Operation(path, method, query, sorted(set(body_fields)), in_path))
    return operations


def _properties(schema: dict, components: dict, depth: int = 0) -> list[str]:
    if depth > 5:
        return []
    if "$ref" in schema:
        return _properties(components.get(schema["$ref"].rsplit("/", 1)[-1], {}), components, depth + 1)
    names = list(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            names += _properties(part, components, depth + 1)
    return names


def json_body(data) -> str:
    return json.dumps(data)
