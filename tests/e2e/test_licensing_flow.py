"""Issue 4 acceptance, in the browser against the Microsoft emulator.

An owner links an existing Microsoft tenant (GDAP request the customer approves), accepts the
Microsoft Customer Agreement, buys 10 seats of Microsoft 365 Business Premium and watches the
provisioning timeline; syncs the directory, assigns three licenses, bulk-assigns from a 200-row
CSV (5 bad rows) after adding the seats the dry run asked for; removes seats inside the 7-day
window with the refund shown first, is refused clearly once the window has passed, and cancels
a subscription inside its cancellation window.

Celery runs eagerly: the outbox operations a request enqueues run in the live server's thread
right after the request commits, so each page after a redirect already shows Microsoft's answer.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.audit import Actor
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment
from licensing.services.assignments import license_unassign
from licensing.tasks import reconcile_all

from .conftest import confirm_dialog, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# The emulator's seeded customer without a relationship to the partner: no GDAP, no app consent.
NORTHWIND_TENANT_ID = "7e9d1c3b-2a4f-4e8d-b6c5-0f1e2d3c4b5a"
NORTHWIND_DOMAIN = "northwinddemo.onmicrosoft.com"
PRODUCT = "Microsoft 365 Business Premium"
ORG_NAME = "Contoso Trading Ltd"  # make_member's organisation


def _directory_users(organization) -> list:
    with tenant_context(organization):
        return sorted(DirectoryUser.objects.for_org(organization), key=lambda u: u.user_principal_name)


def _seat_row(page):
    return page.get_by_role("region", name="Seat pools").get_by_role("row").filter(has_text=PRODUCT)


def link_tenant_and_accept_agreement(page, microsoft, slug: str) -> None:
    page.goto(f"/o/{slug}/")
    page.get_by_role("link", name="Link tenant").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Microsoft tenant")
    page.get_by_role("link", name="Link an existing tenant").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Link an existing Microsoft tenant")
    page.get_by_label("Microsoft tenant ID").fill(NORTHWIND_TENANT_ID)
    page.get_by_label("Company name").fill("Northwind Traders")
    page.get_by_role("button", name="Request relationship").click()
    expect(page.get_by_role("status").filter(has_text="Relationship requested")).to_be_visible()

    # The customer's global admin approves the request in Microsoft's admin center (here: the emulator).
    gdap = page.get_by_role("region", name="Admin relationship (GDAP)")
    expect(gdap.get_by_role("row").nth(1)).to_contain_text("Waiting for customer approval")
    approval = gdap.get_by_role("link", name="Approve in Microsoft 365 admin center")
    relationship_id = approval.get_attribute("href").rstrip("/").rsplit("/", 1)[-1]
    microsoft.approve_gdap(relationship_id)

    confirm_dialog(page, "Check status now", message="Ask Microsoft for the current relationship status?")
    link = page.get_by_role("region", name="Link")
    expect(link).to_contain_text("Active")
    expect(link).to_contain_text(NORTHWIND_TENANT_ID)
    expect(link.locator("#consent-status")).to_contain_text("Granted")

    page.get_by_role("link", name="Review and accept").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Microsoft Customer Agreement")
    page.get_by_label("Phone").fill("+44 20 7946 0000")
    page.get_by_label("I accept the Microsoft Customer Agreement on behalf of my organisation").check()
    page.get_by_role("button", name="Accept agreement").click()
    expect(page.get_by_role("status").filter(has_text="Agreement accepted")).to_be_visible()
    expect(page.get_by_role("region", name="Microsoft Customer Agreement")).to_contain_text("Accepted by")


def pick_license(page, product: str) -> None:
    """The assign form's picker names each license with its free seats ("..., 7 of 10 free")."""
    picker = page.get_by_role("combobox", name=re.compile(r"^License"))
    option = picker.locator("option", has_text=re.compile(rf"^{re.escape(product)}, \d+ of \d+ free$"))
    value = option.get_attribute("value")
    if picker.input_value() == value:
        return
    # Choosing a license reloads its service plans (htmx): wait for that before the form is sent.
    with page.expect_response(lambda response: f"sku={value}" in response.url):
        picker.select_option(value=value)


def buy(page, *, product: str, seats: int, offer: str) -> None:
    """Catalog → offer → quantity/term/billing → review → confirm; ends on the order page."""
    page.get_by_role("navigation", name=ORG_NAME).get_by_role("link", name="Catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalog")
    page.get_by_role("search", name="Filter the catalog").get_by_label("Search").fill(product)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=product, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(product)
    page.get_by_label("Term and billing frequency").select_option(label=offer)
    page.get_by_label("Seats").fill(str(seats))
    page.get_by_role("button", name="Review order").click()
    review = page.get_by_role("region", name="Review your order")
    expect(review).to_contain_text(f"Seats{seats}")
    expect(review).to_contain_text(offer)
    page.get_by_role("button", name="Confirm order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order: {seats} × {product}")


def test_link_buy_assign_bulk_reduce_and_cancel(new_page, make_member, microsoft, tmp_path):
    owner = make_member(role="owner", full_name="Grace Hopper")
    slug = owner.organization.slug
    page = new_page()
    sign_in(page, email=owner.email, app=owner.app, path=f"/o/{slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Grace Hopper")

    # 1. Link the tenant, accept the agreement, buy 10 seats and watch provisioning.
    link_tenant_and_accept_agreement(page, microsoft, slug)
    buy(page, product=PRODUCT, seats=10, offer="1 year term, billed monthly")
    provisioning = page.get_by_role("region", name="Provisioning")
    expect(provisioning.get_by_role("progressbar", name="Provisioning progress")).to_have_attribute("value", "5")
    steps = provisioning.get_by_role("listitem")
    expect(steps).to_have_count(5)
    for index in range(5):
        expect(steps.nth(index)).to_have_class(re.compile("is-done"))
    expect(steps.last).to_contain_text("Seats visible")
    expect(page.locator("#order-status")).to_have_text("Seats visible in tenant")

    # 2. Sync the directory: the new seats are in the tenant's pool.
    nav = page.get_by_role("navigation", name=ORG_NAME)
    nav.get_by_role("link", name="Licenses").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Licenses")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status").filter(has_text="Directory sync started")).to_be_visible()
    expect(page.get_by_role("region", name="Directory sync")).to_contain_text("Succeeded")
    expect(_seat_row(page).get_by_role("cell").first).to_have_text("10")

    users = _directory_users(owner.organization)
    assignable = [u for u in users if u.has_usage_location and u.account_enabled and u.removed_at is None]
    without_location = [u for u in users if not u.has_usage_location and u.removed_at is None]
    assert len(assignable) >= 198 and without_location

    # Three licenses, one user at a time.
    for user in assignable[:3]:
        nav.get_by_role("link", name="Licenses").click()
        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_role("search", name="Search and filter users").get_by_label("Search").fill(
            user.user_principal_name)
        # The results refresh as one types (htmx); wait for them rather than racing a second request.
        found = page.locator("#users-results").get_by_role("link", name=user.display_name, exact=True)
        expect(page.locator("#users-results").get_by_role("row")).to_have_count(2)
        found.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(user.display_name)
        pick_license(page, PRODUCT)
        page.get_by_role("button", name="Assign", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="License requested")).to_be_visible()
        expect(page.get_by_role("table", name="Licenses").get_by_role("row").filter(has_text=PRODUCT)).to_contain_text(
            "Assigned"
        )
    nav.get_by_role("link", name="Licenses").click()
    expect(_seat_row(page).get_by_role("cell").nth(1)).to_have_text("3")

    # Bulk: 200 rows, 5 of them bad. The dry run asks for more seats than the pool has.
    chosen = assignable[3:198]
    bad_rows = [
        "not-an-address",
        f"nobody.here@{NORTHWIND_DOMAIN}",
        chosen[10].user_principal_name,  # duplicate
        without_location[0].user_principal_name,
        "ghost@example.com",
    ]
    lines = [u.user_principal_name for u in chosen]
    for offset, bad in enumerate(bad_rows):
        lines.insert(20 + offset * 37, bad)
    csv_file = tmp_path / "new-starters.csv"
    csv_file.write_text("userPrincipalName\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert len(lines) == 200

    def upload_csv():
        nav.get_by_role("link", name="Licenses").click()
        page.get_by_role("link", name="Bulk assign").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Bulk assign or unassign")
        page.get_by_role("combobox", name=re.compile(r"^License")).select_option(label=PRODUCT)
        page.get_by_role("combobox", name=re.compile(r"^Action")).select_option(label="Assign")
        page.get_by_label(re.compile(r"^CSV file")).set_input_files(str(csv_file))
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Assign {PRODUCT}")

    upload_csv()
    dry_run = page.get_by_role("region", name="Dry run")
    for fact in ("200 rows", "195 will change", "5 invalid", "195 seats needed, 7 free"):
        expect(dry_run).to_contain_text(fact)
    expect(dry_run.get_by_role("alert")).to_contain_text("188 seats short")
    expect(page.get_by_role("button", name="Confirm: assign 195 users")).to_be_disabled()
    page.get_by_role("navigation", name="Rows").get_by_role("link", name="Invalid").click()
    invalid = page.get_by_role("table", name="Rows").get_by_role("row")
    expect(invalid).to_have_count(1 + 5)
    for reason in ("Not a user principal name or e-mail address", "No such user in the directory",
                   "The same user appears earlier in the file", "No usage location"):
        expect(invalid.filter(has_text=reason).first).to_be_visible()
    expect(invalid.filter(has_text="No such user in the directory")).to_have_count(2)
    page.get_by_role("button", name="Discard").click()
    expect(page.get_by_role("status").filter(has_text="Bulk job discarded")).to_be_visible()

    # Add the seats to the subscription (any time), sync, and run the file again.
    nav.get_by_role("link", name="Subscriptions").click()
    page.get_by_role("table").get_by_role("link", name=PRODUCT).click()
    seats = page.get_by_role("spinbutton", name="New number of seats")
    seats.fill("200")
    expect(seats).to_have_accessible_description(re.compile("Adding seats is possible at any time"))
    page.get_by_role("button", name="Apply now").click()
    expect(page.get_by_role("status").filter(has_text="Change sent to Microsoft")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("3 assigned of 200 purchased")
    subscription_url = page.url

    nav.get_by_role("link", name="Licenses").click()
    page.get_by_role("button", name="Sync now").click()
    expect(_seat_row(page).get_by_role("cell").first).to_have_text("200")
    upload_csv()
    expect(dry_run).to_contain_text("195 seats needed, 197 free")
    page.get_by_role("button", name="Confirm: assign 195 users").click()
    progress = page.get_by_role("region", name="Progress")
    expect(progress.get_by_role("progressbar", name="Users changed in Microsoft 365")).to_have_attribute("value", "195")
    expect(progress).to_contain_text("195 done, 0 failed")
    nav.get_by_role("link", name="Licenses").click()
    expect(_seat_row(page).get_by_role("cell").nth(1)).to_have_text("198")

    # 3. Remove seats inside their 7-day window: the refund is shown before applying.
    page.goto(subscription_url)
    seats.fill("198")
    expect(seats).to_have_accessible_description(re.compile(r"2 seats refunded now, about USD \d+\.\d\d"))
    page.get_by_role("button", name="Apply now").click()
    expect(page.get_by_role("status").filter(has_text="Change sent to Microsoft")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("198 assigned of 198 purchased")

    # Someone leaves and their license is unassigned: with every seat assigned, a further reduction would
    # be refused by the seat check before reaching Microsoft (decision 011, tests/e2e/test_seat_reduction.py).
    with tenant_context(owner.organization):
        leaver = LicenseAssignment.objects.for_org(owner.organization).filter(sku__display_name=PRODUCT,
                                                                         state="assigned").first()
        license_unassign(organization=owner.organization, assignment=leaver, actor=Actor.system("tests"))

    # Eight days later by Microsoft's clock, every batch is past its window. The portal has not heard yet
    # and sends the change; Microsoft refuses, and the page says so in plain words instead of staying
    # silent. The refusal re-reads the subscription, so the page stops offering seats back.
    microsoft.advance_clock(days=8)
    page.reload()
    # Typing asks the refund simulator (htmx); let it answer before sending, rather than racing it.
    with page.expect_response(lambda response: "/simulate/" in response.url):
        seats.fill("197")
    page.get_by_role("button", name="Apply now").click()
    refused = page.get_by_role("alert").filter(has_text="Microsoft did not make the last change")
    expect(refused).to_contain_text("Schedule the reduction for the next term instead.")
    expect(page.locator("#refundable-seats")).to_have_text("0")
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("197 assigned of 198 purchased")

    # The hourly reconcile brings Microsoft's seat windows in; from then on the portal refuses before
    # sending anything, with the reason and what to do instead.
    reconcile_all()
    page.reload()
    expect(page.locator("#refundable-seats")).to_have_text("0")
    seats.fill("197")
    closed = re.compile(r"No seats can be removed now: every batch of seats is past its 7-day window\. "
                        r"Schedule the reduction for the next term instead\.")
    expect(seats).to_have_accessible_description(closed)
    page.get_by_role("button", name="Apply now").click()
    expect(page.locator("#messages").get_by_role("alert")).to_have_text(closed)
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("197 assigned of 198 purchased")

    # A subscription bought now is inside its own cancellation window: cancel it, refund shown first.
    buy(page, product="Exchange Online (Plan 1)", seats=5, offer="1 month term, billed monthly")
    expect(page.locator("#order-status")).to_have_text("Seats visible in tenant")
    page.get_by_role("list").get_by_role("link", name="Exchange Online (Plan 1)").click()
    expect(page.locator("#cancel-window")).to_contain_text("Open:")
    cancel = page.get_by_role("region", name="Cancel")
    expect(cancel).to_contain_text(re.compile(r"5 seats refunded now, about USD \d+\.\d\d"))
    confirm_dialog(page, "Cancel subscription", scope=cancel, message="Access ends immediately")
    expect(page.get_by_role("status").filter(has_text="Cancellation sent to Microsoft")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="Cancelled")).to_be_visible()
    expect(page.get_by_role("region", name="Cancel")).to_have_count(0)

    nav.get_by_role("link", name="Subscriptions").click()
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows.filter(has_text="Exchange Online (Plan 1)")).to_contain_text("Cancelled")
    expect(rows.filter(has_text=PRODUCT)).to_contain_text("197 / 198")
