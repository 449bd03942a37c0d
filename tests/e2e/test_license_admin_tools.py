"""Issue 7 acceptance, in the browser against the Microsoft emulator: a license admin's daily tools.

After the tenant is linked and 10 seats of Business Premium are bought (the same steps as the licensing
flow), every seat is assigned. The admin then finds a user by part of their name, reassigns a license
from a leaver to a joiner in one step, buys one more seat from the overview's suggestion, and watches
the notifications bell count change.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.audit import Actor
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, Notification, TenantSku
from licensing.services import assignments as assignment_services
from licensing.services import notifications as notification_services

from .conftest import sign_in
from .test_licensing_flow import ORG_NAME, PRODUCT, buy, link_tenant_and_accept_agreement

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]


def fill_every_seat(organization) -> tuple[DirectoryUser, DirectoryUser]:
    """Assign all the pool's seats (set up through the service, as the UI would); return a holder whose
    name is distinctive (the leaver) and a user without the license (the joiner)."""
    with tenant_context(organization):
        pool = TenantSku.objects.for_org(organization).get(display_name=PRODUCT)
        users = sorted((u for u in DirectoryUser.objects.for_org(organization)
                        if u.has_usage_location and u.account_enabled and u.removed_at is None and u.display_name),
                       key=lambda u: u.user_principal_name)
        for user in users[:pool.purchased]:
            assignment_services.license_assign(organization=organization, user=user, sku=pool,
                                               actor=Actor.system("e2e"))
    return users[0], users[pool.purchased]


def bell_count(page) -> str:
    return page.locator("#notification-bell .bell-count").get_attribute("data-unread")


def test_search_reassign_buy_from_suggestion_and_bell(new_page, make_member, microsoft):
    owner = make_member(role="owner", full_name="Grace Hopper")
    organization = owner.organization
    slug = organization.slug
    page = new_page()
    sign_in(page, email=owner.email, app=owner.app, path=f"/o/{slug}/")
    link_tenant_and_accept_agreement(page, microsoft, slug)
    buy(page, product=PRODUCT, seats=10, offer="1 year term, billed monthly")
    expect(page.locator("#order-status")).to_have_text("Seats visible in tenant")
    nav = page.get_by_role("navigation", name=ORG_NAME)
    nav.get_by_role("link", name="Licenses").click()
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("region", name="Directory sync")).to_contain_text("Succeeded")
    leaver, joiner = fill_every_seat(organization)

    # 1. Find the leaver by part of their name (the directory's names are encrypted at rest).
    page.get_by_role("link", name="Users", exact=True).click()
    part = leaver.display_name.split()[0][1:4].lower()
    page.get_by_role("search", name="Search and filter users").get_by_label("Search").fill(part)
    results = page.locator("#users-results")
    expect(page).to_have_url(re.compile(rf"[?&]q={re.escape(part)}"))  # pushed once the results are swapped in
    expect(results.get_by_role("link", name=leaver.display_name, exact=True)).to_be_visible()
    rows = results.locator("tbody tr").all_inner_texts()
    assert rows and all(part in row.lower() for row in rows)
    results.get_by_role("link", name=leaver.display_name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(leaver.display_name)

    # 2. Reassign the leaver's license to the joiner in one step; the pool is full, and stays so.
    page.get_by_label(f"Give {PRODUCT} to").fill(joiner.user_principal_name)
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status").filter(has_text=f"{PRODUCT} is moving from")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(joiner.display_name)
    expect(page.get_by_role("table", name="Licenses").get_by_role("row").filter(has_text=PRODUCT)).to_contain_text(
        "Assigned")
    with tenant_context(organization):
        states = dict(LicenseAssignment.objects.for_org(organization).filter(
            user__in=[leaver, joiner], sku__display_name=PRODUCT).values_list("user_id", "state"))
    assert states == {leaver.pk: "removed", joiner.pk: "assigned"}

    # 3. The overview says the license is full and offers to buy one more: follow it and buy.
    nav.get_by_role("link", name="Overview").click()
    seats = page.get_by_role("region", name="Seats per license")
    expect(seats.get_by_role("row").filter(has_text=PRODUCT)).to_contain_text("10")
    seats.get_by_role("link", name=re.compile(rf"^Buy 1 more {re.escape(PRODUCT)}")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PRODUCT)
    expect(page.get_by_role("spinbutton", name="New number of seats")).to_have_value("11")
    page.get_by_role("button", name="Apply now").click()
    expect(page.get_by_role("status").filter(has_text="Change sent to Microsoft")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_contain_text("of 11 purchased")

    # 4. The bell counts what is new, on every page, and "Mark all read" clears it in place.
    before = int(bell_count(page))
    with tenant_context(organization):
        notification_services.notification_send(
            organization=organization, recipients=[owner.user], kind=Notification.Kind.PROVISIONING_FAILED,
            title="A change in Microsoft 365 did not go through", dedupe_key="e2e:bell", email=False)
    nav.get_by_role("link", name="Subscriptions").click()
    expect(page.locator("#notification-bell .bell-count")).to_have_attribute("data-unread", str(before + 1))
    page.locator("#notification-bell summary").click()
    bell = page.locator("#notification-bell")
    expect(bell.get_by_role("list", name="Latest notifications")).to_contain_text(
        "A change in Microsoft 365 did not go through")
    bell.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#notification-bell .bell-count")).to_have_attribute("data-unread", "0")
    bell_link = page.locator("#notification-bell").get_by_role("link", name="All notifications")
    page.locator("#notification-bell summary").click()
    bell_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
