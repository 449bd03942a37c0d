"""Every section each role can open, reached the way a person does: from the organisation's navigation
and the account's. The accessibility gate (conftest.AxeGate) checks each page on arrival, so a
section added to the navigation is checked for every role that sees it, without a list of URLs.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.roles import Role

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _links(page, navigation) -> list[tuple[str, str]]:
    return navigation.get_by_role("link").evaluate_all("links => links.map(a => [a.innerText.trim(), a.href])")


def _visit_all(page, navigation_name: str) -> list[str]:
    """Open every link of the named navigation, each one once; returns the headings seen."""
    headings = []
    for label, href in _links(page, page.get_by_role("navigation", name=navigation_name)):
        response = page.goto(href)
        assert response.status == 200, (label, href, response.status)
        heading = page.get_by_role("heading", level=1)
        expect(heading).to_be_visible()  # the first assertion on the page: the gate checks it here
        headings.append(heading.inner_text())
    return headings


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_every_section_a_role_can_open_passes_the_gate(page, make_member, axe_gate, role):
    member = make_member(role=role, full_name="Tess Tour")
    slug = member.organization.slug
    sign_in(page, email=member.email, app=member.app, path=f"/o/{slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Tess Tour")

    sections = _visit_all(page, member.organization.display_name)
    page.goto("/accounts/profile/")
    account = _visit_all(page, "Your account")

    assert len(sections) >= 5 and len(account) >= 4, (sections, account)
    assert axe_gate.documents_checked >= len(sections) + len(account)
