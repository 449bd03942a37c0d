"""Keyboard use of the dashboard: the skip link, navigation order, the two header menus, and a visible focus
indicator on every Tab stop of the overview and of a form page."""

import base64
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


# --- a visible focus indicator on every stop --------------------------------------------------------

MAX_TAB_STOPS = 80
# Pixels around an element that its focus indicator may use: the 3px outline, its 2px offset, spare.
FOCUS_MARGIN = 8

_DESCRIBE_FOCUS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const rect = el.getBoundingClientRect();
    const label = el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].innerText)
        || el.innerText || el.value || el.getAttribute("name") || "";
    return {
        key: Array.prototype.indexOf.call(document.querySelectorAll("*"), el),
        what: `${el.tagName.toLowerCase()} "${label.trim().replace(/\\s+/g, " ").slice(0, 40)}"`,
        x: rect.left, y: rect.top, width: rect.width, height: rect.height,
        inViewport: rect.width > 0 && rect.height > 0 && rect.top >= 0 && rect.left >= 0
            && rect.bottom <= window.innerHeight && rect.right <= window.innerWidth,
        inMain: !!el.closest("main"),
    };
}"""

# Counts the pixels that differ between two PNG screenshots, in a blank page of its own.
_COUNT_CHANGED_PIXELS = """async ([a, b]) => {
    const pixels = async (src) => {
        const image = new Image();
        image.src = src;
        await image.decode();
        const canvas = new OffscreenCanvas(image.width, image.height);
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        return context.getImageData(0, 0, image.width, image.height).data;
    };
    const [x, y] = await Promise.all([pixels(a), pixels(b)]);
    if (x.length !== y.length) return -1;
    let changed = 0;
    for (let i = 0; i < x.length; i += 4) {
        if (x[i] !== y[i] || x[i + 1] !== y[i + 1] || x[i + 2] !== y[i + 2]) changed++;
    }
    return changed;
}"""


@pytest.fixture
def changed_pixels(browser):
    """``changed_pixels(png_a, png_b)``: how many pixels differ (a blank page of its own does the sums)."""
    context = browser.new_context()
    blank = context.new_page()

    def count(a: bytes, b: bytes) -> int:
        urls = [f"data:image/png;base64,{base64.b64encode(png).decode()}" for png in (a, b)]
        return blank.evaluate(_COUNT_CHANGED_PIXELS, urls)

    yield count
    context.close()


def _walk_tab_stops(page, changed_pixels) -> list[dict]:
    """Tab from the top of the page until focus leaves it or comes round again. At every stop, the
    area around the focused element is photographed focused and not (blurred, then focused again, so
    the next Tab goes on from there): the difference is what the focus indicator shows."""
    viewport = page.viewport_size
    page.goto(page.url.split("#")[0])  # from the top (blurring would leave where Tab starts; so would #main)
    stops: list[dict] = []
    for _ in range(MAX_TAB_STOPS):
        page.keyboard.press("Tab")
        stop = page.evaluate(_DESCRIBE_FOCUS)
        if stop is None or (stops and stop["key"] == stops[0]["key"]):
            return stops
        x, y = max(stop["x"] - FOCUS_MARGIN, 0), max(stop["y"] - FOCUS_MARGIN, 0)
        clip = {
            "x": x, "y": y,
            "width": min(stop["x"] + stop["width"] + FOCUS_MARGIN, viewport["width"]) - x,
            "height": min(stop["y"] + stop["height"] + FOCUS_MARGIN, viewport["height"]) - y,
        }
        focused = page.screenshot(clip=clip, animations="disabled", caret="hide")
        element = page.evaluate_handle("() => document.activeElement")
        element.evaluate("el => el.blur()")
        unfocused = page.screenshot(clip=clip, animations="disabled", caret="hide")
        element.evaluate("el => el.focus()")
        stop["changed"] = changed_pixels(focused, unfocused)
        stops.append(stop)
    raise AssertionError(f"Focus did not leave the page within {MAX_TAB_STOPS} stops: {stops[-5:]}")


def _assert_visible_focus_on_every_stop(page, changed_pixels, *, at_least: int) -> list[dict]:
    stops = _walk_tab_stops(page, changed_pixels)
    assert len(stops) >= at_least, [s["what"] for s in stops]
    # Visible: in the viewport, and the indicator changes at least a one-pixel ring's worth of pixels.
    unseen = [s for s in stops if not s["inViewport"] or s["changed"] < 2 * (s["width"] + s["height"])]
    assert not unseen, "Tab stops without a visible focus indicator:\n" + "\n".join(
        f"  {s['what']}: {s['changed']} pixels changed, {s['width']:.0f}x{s['height']:.0f}, "
        f"{'in' if s['inViewport'] else 'outside'} the viewport" for s in unseen
    )
    return stops


def _assert_skip_link_works(page) -> None:
    """First Tab: the skip link, visible; Enter moves focus to the main content; the next Tab stays in it."""
    page.goto(page.url.split("#")[0])
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate(_DESCRIBE_FOCUS)["inMain"], page.evaluate(_DESCRIBE_FOCUS)


def test_every_tab_stop_shows_focus_on_the_overview_and_a_form_page(page, make_member, changed_pixels):
    member = make_member(role="owner", full_name="Fay Cuss")
    slug = member.organization.slug
    sign_in(page, email=member.email, app=member.app, path=f"/o/{slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Fay Cuss")

    _assert_skip_link_works(page)
    stops = _assert_visible_focus_on_every_stop(page, changed_pixels, at_least=10)
    whats = [s["what"] for s in stops]
    assert whats[0] == 'a "Skip to main content"', whats
    assert any(s["inMain"] for s in stops) and any(not s["inMain"] for s in stops[1:]), whats

    page.goto(f"/o/{slug}/team/invitations/new/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Invite someone")
    _assert_skip_link_works(page)
    stops = _assert_visible_focus_on_every_stop(page, changed_pixels, at_least=6)
    in_form = [s["what"] for s in stops if s["inMain"]]
    assert any(w.startswith("input") for w in in_form) and any(w.startswith("select") for w in in_form), in_form
    assert any(w.startswith('button "Send invitation"') for w in in_form), in_form
