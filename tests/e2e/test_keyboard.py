"""Keyboard smoke test of the dashboard shell: skip link, navigation order, and the two header menus."""

import re

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import MembershipFactory, OrganizationFactory

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_TABS_TO_NAV = 8


def _focused(page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {
                tag: el.tagName.toLowerCase(),
                text: (el.innerText || "").trim().replace(/\\s+/g, " "),
                inOrgNav: !!el.closest("#org-nav"),
                inMain: !!el.closest("main"),
                menu: el.closest("details[data-menu]") ? el.closest("details[data-menu]").className : "",
                isMain: el.id === "main",
            };
        }"""
    )


def _tab_until(page, predicate, limit: int) -> list[dict]:
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = _focused(page)
        seen.append(focused)
        if predicate(focused):
            return seen
    raise AssertionError(f"Not reached within {limit} tabs; focus went through {seen}")


def test_keyboard_reaches_skip_link_navigation_and_menus(page, make_member):
    member = make_member(role="owner", full_name="Kay Board")
    other = OrganizationFactory(legal_name="Fabrikam GmbH", country="DE")
    MembershipFactory(user=member.user, organization=other, role="viewer")
    slug = member.organization.slug
    sign_in(page, email=member.email, app=member.app, path=f"/o/{slug}/")
    expect(page).to_have_url(re.compile(rf"/o/{slug}/$"))

    # The first Tab lands on the skip link, and it moves focus to the main content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert _focused(page)["isMain"], _focused(page)

    # From the top again: the header menus, then the organisation's navigation, before any page content.
    page.goto(f"/o/{slug}/")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    seen = _tab_until(page, lambda f: f["inOrgNav"], MAX_TABS_TO_NAV)
    assert not any(f["inMain"] for f in seen), seen
    assert seen[-1]["text"] == "Overview", seen
    menus = [f["menu"] for f in seen if f["menu"]]
    assert any("org-switcher" in m for m in menus) and any("user-menu" in m for m in menus), seen

    # The organisation switcher opens with Enter, its items are reachable with Tab, Escape closes it.
    switcher = page.locator("details.org-switcher")
    switcher_button = switcher.locator("summary")
    switcher_button.focus()
    page.keyboard.press("Enter")
    expect(switcher).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    assert _focused(page)["menu"].startswith("menu org-switcher"), _focused(page)
    expect(switcher.get_by_role("link", name=re.compile(r"Contoso Trading Ltd\s+Owner"))).to_be_visible()
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(switcher_button).to_be_focused()

    # The user menu opens with Space; Enter on an item follows it.
    user_menu = page.locator("details.user-menu")
    user_menu.locator("summary").focus()
    page.keyboard.press(" ")
    expect(user_menu).to_have_attribute("open", "")
    expect(user_menu.get_by_role("button", name="Sign out")).to_be_visible()
    _tab_until(page, lambda f: f["text"] == "Profile", 3)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))

    # Switching organisation by keyboard alone.
    page.goto(f"/o/{slug}/")
    switcher_button.focus()
    page.keyboard.press("Space")
    _tab_until(page, lambda f: "Fabrikam" in f["text"], 4)
    expect(switcher.get_by_role("link", name=re.compile(r"Fabrikam GmbH\s+Viewer"))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/o/{other.slug}/$"))
    expect(page.get_by_role("navigation", name="Fabrikam GmbH")).to_contain_text("Viewer")
