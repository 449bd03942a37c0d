"""The accessibility gate itself (``AxeGate`` in conftest.py): it finds what it is meant to find, when it
is meant to, and leaves the site's Content-Security-Policy in force.

The pages here are served by the browser context from the live server's origin (``page.route``), so
the gate treats them like the portal's own; each test clears what it provoked on purpose before the
fixture's teardown would fail it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"
CSS = """
body { font-family: sans-serif; background: #fff; color: #111; }
.faint { color: #b0b0b0; }
.gradient { background: linear-gradient(to right, #fff, #eee); }
"""
LAYOUT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<link rel="stylesheet" href="/gate/test.css">{head}</head>
<body><header><p>Gate test</p></header><main><h1>{title}</h1>{body}</main></body></html>"""
PAGES = {
    "clean": {"title": "Clean", "head": "", "body": "<p>Nothing wrong here.</p>"},
    "broken": {
        "title": "Broken",
        "head": "",
        "body": """
            <form><label for="qty">Seats</label><input id="qty" name="a">
                  <label for="qty">Seats at renewal</label><input id="qty" name="b"></form>
            <nav aria-label="Sections"><a href="/gate/clean">One</a></nav>
            <nav aria-label="Sections"><a href="/gate/clean">Two</a></nav>
            <p class="faint">Hard to read.</p>
            <p class="gradient">On a gradient.</p>""",
    },
    "swap": {
        "title": "Swap",
        "head": '<script src="/static/portal/vendor/htmx-2.0.11.min.js" defer></script>',
        "body": """<button type="button" hx-get="/gate/fragment" hx-target="#slot">Load</button>
            <div id="slot"></div>""",
    },
    "inline-script": {
        "title": "Inline script",
        "head": "",
        "body": '<script>document.title = "the inline script ran";</script>',
    },
}
FRAGMENT = '<img src="/static/portal/favicon.svg" id="loaded">'


@pytest.fixture
def gate_pages(page, live_server):
    """``page`` with the test pages above routed at ``/gate/<name>`` under the site's own origin."""

    def serve(route):
        name = route.request.url.removeprefix(f"{live_server.url}/gate/")
        if name == "test.css":
            route.fulfill(status=200, content_type="text/css", body=CSS)
        elif name == "fragment":
            route.fulfill(status=200, content_type="text/html", body=FRAGMENT)
        else:
            route.fulfill(status=200, content_type="text/html; charset=utf-8",
                          headers={"Content-Security-Policy": CSP}, body=LAYOUT.format(**PAGES[name]))

    page.route(f"{live_server.url}/gate/**", serve)
    return page


def _rules(axe_gate) -> set[tuple[str, str]]:
    return {(f.rule, f.kind) for f in axe_gate.findings}


def test_a_page_is_checked_on_arrival_and_what_axe_finds_is_reported(gate_pages, axe_gate):
    page = gate_pages
    page.goto("/gate/clean")
    expect(page.get_by_role("heading", level=1)).to_have_text("Clean")
    assert axe_gate.documents_checked == 1 and axe_gate.findings == []

    # The first assertion on the next document runs the check before it: the findings are there at once.
    page.goto("/gate/broken")
    expect(page.get_by_role("heading", level=1)).to_have_text("Broken")
    assert axe_gate.documents_checked == 2
    assert {
        ("duplicate-id-aria", "needs review"),  # a label points at an id two inputs carry
        ("landmark-unique", "violation"),  # two navigations with the same name
        ("color-contrast", "violation"),  # grey on white
        ("color-contrast", "needs review"),  # text on a gradient: nobody can say
    } <= _rules(axe_gate)
    contrast = next(f for f in axe_gate.findings if f.rule == "color-contrast" and f.kind == "violation")
    assert contrast.path == "/gate/broken" and contrast.when == "after navigation"
    assert any(".faint" in node for node in contrast.nodes), contrast
    assert "dequeuniversity.com/rules/axe/4.14/color-contrast" in str(contrast)

    # Checked once per document: more steps on the same page do not pile up runs or findings.
    found = len(axe_gate.findings)
    expect(page.get_by_role("navigation").first).to_be_visible()
    page.get_by_label("Seats at renewal").fill("4")
    assert axe_gate.documents_checked == 2 and len(axe_gate.findings) == found

    axe_gate.findings.clear()
    page.goto("about:blank")  # the teardown checks the page still open; this one is not the site's


def test_content_htmx_swaps_in_is_checked_before_the_next_step(gate_pages, axe_gate):
    page = gate_pages
    page.goto("/gate/swap")
    expect(page.get_by_role("heading", level=1)).to_have_text("Swap")
    assert axe_gate.findings == []

    page.get_by_role("button", name="Load").click()
    # Settled: htmx has fired htmx:afterSettle, which takes the document's "checked" mark away.
    page.wait_for_function("() => document.querySelector('#loaded') && !document.querySelector('.htmx-settling')")
    expect(page.get_by_role("heading", level=1)).to_have_text("Swap")
    assert ("image-alt", "violation") in _rules(axe_gate)
    assert axe_gate.documents_checked == 2  # the same document, checked again with the new content

    axe_gate.findings.clear()
    page.goto("about:blank")


def test_the_gate_leaves_the_sites_csp_in_force(gate_pages, axe_gate, page_problems):
    page = gate_pages
    page.goto("/gate/inline-script")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inline script")
    assert axe_gate.documents_checked == 1 and axe_gate.findings == []  # axe-core ran, under this CSP
    assert page.title() == "Inline script"  # while the page's own inline script did not
    assert any("/gate/inline-script" in v for v in page_problems.csp_violations), page_problems

    page_problems.csp_violations.clear()
    page.goto("about:blank")
