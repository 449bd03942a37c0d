"""The Content-Security-Policy forbids inline code: our pages must not need it."""

from html.parser import HTMLParser

import pytest
from django.template import Context, Template

from core.audit import Actor, audit_record

pytestmark = pytest.mark.django_db


class InlineCodeFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        names = {name.lower() for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style= on <{tag}>")
        self.problems += [f"{name}= handler on <{tag}>" for name in names if name.startswith("on")]
        self.problems += [f"{name} on <{tag}>" for name in names if name.startswith("hx-on")]
        urls = [value or "" for name, value in attrs if name in {"href", "src", "action", "hx-get", "hx-post"}]
        self.problems += [f"javascript: URL on <{tag}>" for url in urls if url.lower().startswith("javascript:")]


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.problems


def test_csp_header_has_no_unsafe_inline(owner):
    client, _ = owner
    response = client.get("/o/contoso/")
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy


def test_owned_pages_contain_no_inline_code(owner, organization):
    client, user = owner
    audit_record(actor=Actor.user(user), action="tenant.linked", organization=organization)
    pages = {
        "overview": client.get("/o/contoso/", HTTP_SEC_GPC="1"),
        "activity": client.get("/o/contoso/security/activity/?q=x&sort=action"),
        "activity fragment": client.get(
            "/o/contoso/security/activity/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="activity-results"
        ),
        "not found": client.get("/o/nowhere/"),
    }
    for name, response in pages.items():
        assert response.status_code == (404 if name == "not found" else 200), name
        assert inline_code(response.content.decode()) == [], name


def test_components_contain_no_inline_code(rf):
    request = rf.get("/x/?page=2")
    template = Template(
        """{% load charts %}
        {% include "components/progress.html" with value=3 max=10 label="Exporting" poll_url="/p/" %}
        {% include "components/confirm_button.html" with url="/x/" label="Revoke" message="Sure?" danger=True %}
        {% include "components/empty_state.html" with title="Nothing" action_url="/a/" action_label="Do it" %}
        {% include "components/badge.html" with status="active" %}
        {% include "components/stat_card.html" with label="Seats" value=3 url="/s/" %}
        {% line_chart series title="Seats" %}{% bar_chart points title="Spend" %}"""
    )
    html = template.render(
        Context(
            {
                "request": request,
                "series": [{"name": "Assigned", "points": [("Mon", 1), ("Tue", 3)]}],
                "points": [("Jan", 10), ("Feb", 20)],
            }
        )
    )
    assert "<svg" in html and "<progress" in html
    assert inline_code(html) == []


def test_api_docs_page_contains_no_inline_code(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert inline_code(page) == []
    assert "/static/portal/css/api-docs.css" in page and "swagger-ui-bundle.js" in page
