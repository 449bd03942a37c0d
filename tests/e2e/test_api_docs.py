"""The interactive API docs load under the portal's CSP: the fixtures fail the test on any CSP console error."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_without_csp_violations(page, page_problems):
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    expect(page.get_by_text("Cloud Licenses Portal API").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # the moved stylesheet applies
    assert page_problems.csp_violations == []
