"""A phone (390 by 844, an iPhone 12-14): the key columns stay on screen, the order review fits.

Screenshots of each page are kept in var/e2e-artifacts/ (small-screen-*.png) for a person to look at.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.tenancy import tenant_context
from licensing.models import TenantSku
from licensing.tests.core.factories import PriceFactory, SubscriptionFactory

from .conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
PRODUCT = "Microsoft 365 Business Premium"


@pytest.fixture
def phone(browser, live_server, page_problems):
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="en-GB", timezone_id="UTC",
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page_problems.watch(page, live_server.url)
    yield page
    context.close()
    problems = page_problems.csp_violations + page_problems.script_errors + page_problems.missing_csp
    assert not problems, problems


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"small-screen-{name}.png"), full_page=False)


def _on_screen(page, locator) -> None:
    """Visible, and wholly inside the phone's width (not scrolled off to the right of a wide table)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, box


@pytest.fixture
def owner_with_licenses(make_member):
    member = make_member(role="owner")
    organization = member.organization
    price = PriceFactory(availability__sku__product__title=PRODUCT, availability__sku__title=PRODUCT)
    PriceFactory(availability=price.availability, term_duration="P1M", list_price=Decimal("26.40"))
    renews = timezone.now() + timedelta(days=200)
    SubscriptionFactory(organization=organization, sku=price.availability.sku, product_title=PRODUCT, quantity=25,
                        commitment_end=renews)
    with tenant_context(organization):
        TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), sku_part_number="SPB",
                                 display_name=PRODUCT, purchased=25)
    return member, price.availability.sku.product


def test_key_columns_stay_on_a_phone_screen(phone, owner_with_licenses):
    member, _ = owner_with_licenses
    slug = member.organization.slug
    sign_in(phone, email=member.email, app=member.app)

    phone.goto(f"/o/{slug}/subscriptions/")
    _screenshot(phone, "subscriptions")
    row = phone.locator("#subscriptions-table tbody tr").first
    _on_screen(phone, row.get_by_role("link", name=PRODUCT))
    _on_screen(phone, row.locator("time"))  # renews on
    _on_screen(phone, row.locator("td").nth(2))  # seats: assigned / purchased
    expect(phone.get_by_role("columnheader", name="Cancellation window")).to_be_hidden()

    phone.goto(f"/o/{slug}/licenses/")
    _screenshot(phone, "licenses")
    row = phone.get_by_role("region", name="Seat pools").get_by_role("row").filter(has_text=PRODUCT)
    _on_screen(phone, row.get_by_role("rowheader"))
    for column in range(3):  # purchased, assigned, free
        _on_screen(phone, row.locator("td").nth(column))


def test_order_review_fits_a_phone_screen_with_the_offer_shown_once(phone, owner_with_licenses):
    member, product = owner_with_licenses
    sign_in(phone, email=member.email, app=member.app)
    phone.goto(f"/o/{member.organization.slug}/catalog/{product.pk}/")
    expect(phone.locator("#offers-table")).to_be_visible()
    phone.get_by_label("Seats").fill("12")
    phone.get_by_role("button", name="Review order").click()

    expect(phone.get_by_role("heading", name="Review your order")).to_be_visible()
    expect(phone.locator("#offers-table")).to_have_count(0)
    confirm = phone.get_by_role("button", name="Confirm order")
    expect(confirm).to_be_visible()
    assert phone.evaluate("window.scrollY") == 0
    box = confirm.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], f"Confirm is below the fold: {box}"
    _on_screen(phone, confirm)
    _screenshot(phone, "order-review")
