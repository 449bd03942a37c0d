"""Issue 15 acceptance, in the browser against the Microsoft emulator: reducing seats below the licenses
assigned is refused with the numbers, and the same flow lets the owner pick two people to release;
one confirmation unassigns them and then removes the seats, the timeline finishes, and every page
(subscription, subscriptions, licenses, usage) shows the same counts.

The organisation is set up through the services (link, agreement, purchase, directory sync, ten
assignments); Celery runs eagerly, so each page after a redirect already shows Microsoft's answer.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

import licensing.tasks  # noqa: F401 - registers the tasks the services enqueue by name
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import demo
from licensing.microsoft.client import default_client
from licensing.models import DirectoryUser, LicenseAssignment, Subscription, TenantSku
from licensing.services import assignments as assignment_services
from licensing.services import directory as directory_services

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

PRODUCT = "Microsoft 365 Business Basic"
ORG_NAME = "Contoso Trading Ltd"  # make_member's organisation


def _business_basic_with_ten_assigned(owner, microsoft):
    org, actor = owner.organization, Actor.user(owner.user)
    control = demo.EmulatorControl(microsoft.base_url, microsoft.ca_path)
    demo.link_demo_tenant(organization=org, actor=owner.user, control=control)
    demo.accept_demo_agreement(organization=org, user=owner.user)
    subscription = demo.buy(organization=org, user=owner.user, catalog_id=demo.BUSINESS_BASIC, quantity=10)
    with tenant_context(org):
        directory_services.directory_sync_request(organization=org, actor=actor)
    with tenant_context(org):
        pool = TenantSku.objects.for_org(org).get(sku_id=subscription.sku.provisioning_id)
        users = list(DirectoryUser.objects.for_org(org).filter(has_usage_location=True, removed_at__isnull=True,
                                                               account_enabled=True)
                     .exclude(assignments__sku=pool).order_by("created_at")[:10])
        recent = timezone.now() - timedelta(days=1)
        DirectoryUser.objects.filter(pk__in=[u.pk for u in users]).update(last_sign_in_at=recent)
        # Two people have not signed in for months: the page lists them first.
        stale = users[6:8]
        DirectoryUser.objects.filter(pk__in=[u.pk for u in stale]).update(
            last_sign_in_at=timezone.now() - timedelta(days=200), created_at=timezone.now() - timedelta(days=400))
    for user in users:
        with tenant_context(org):
            assignment_services.license_assign(organization=org, user=user, sku=pool, actor=actor)
    with tenant_context(org):
        assert LicenseAssignment.objects.for_org(org).filter(sku=pool, state="assigned").count() == 10
    return subscription, pool, stale


def test_pick_two_users_to_release_reduce_and_see_the_counts_agree(new_page, make_member, microsoft):
    owner = make_member(role="owner", full_name="Grace Hopper")
    slug = owner.organization.slug
    subscription, pool, stale = _business_basic_with_ten_assigned(owner, microsoft)

    page = new_page()
    sign_in(page, email=owner.email, app=owner.app, path=f"/o/{slug}/subscriptions/{subscription.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(PRODUCT)
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("10 assigned of 10 purchased")

    # Asking for 8 seats while 10 licenses are assigned: refused, with the numbers, and the way out.
    page.get_by_role("spinbutton", name="New number of seats").fill("8")
    page.get_by_role("button", name="Apply now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Reduce {PRODUCT} to 8 seats")
    expect(page.locator("#messages").get_by_role("alert")).to_contain_text(
        f"{PRODUCT} has 10 licenses assigned; reducing to 8 seats needs 2 unassigned first.")
    expect(page.locator("#reduce-short")).to_have_text("2")

    people = page.get_by_role("table", name=re.compile("People holding")).get_by_role("row")
    expect(people).to_have_count(1 + 10)
    # Inactive first, as the reclaim report ranks them (the two signed in last at the same moment).
    first_two = " ".join(people.nth(index).inner_text() for index in (1, 2))
    for user in stale:
        assert user.user_principal_name in first_two
    expect(people.filter(has_text="Inactive")).to_have_count(2)
    for user in stale:
        page.get_by_role("checkbox", name=user.display_name or user.user_principal_name).check()
    page.get_by_role("button", name="Release the chosen licenses and reduce to 8 seats").click()

    # The operation's timeline: both steps done, in order.
    released_note = "Releasing 2 license(s), then reducing to 8 seats"
    expect(page.get_by_role("status").filter(has_text=released_note)).to_be_visible()
    steps = page.locator("#provisioning-timeline").get_by_role("listitem")
    expect(steps).to_have_count(3)
    for index in range(3):
        expect(steps.nth(index)).to_have_class(re.compile("is-done"))
    expect(steps.nth(1)).to_contain_text("Chosen licenses unassigned")
    expect(steps.nth(2)).to_contain_text("Seats reduced at Microsoft")
    expect(page.locator("#operation-status")).to_contain_text("Succeeded")

    # The counts agree on every page.
    page.goto(f"/o/{slug}/subscriptions/{subscription.pk}/")
    expect(page.get_by_role("definition").filter(has_text="purchased")).to_have_text("8 assigned of 8 purchased")
    nav = page.get_by_role("navigation", name=ORG_NAME)
    nav.get_by_role("link", name="Subscriptions").click()
    expect(page.get_by_role("table").get_by_role("row").filter(has_text=PRODUCT)).to_contain_text("8 / 8")
    nav.get_by_role("link", name="Licenses").click()
    row = page.get_by_role("region", name="Seat pools").get_by_role("row").filter(has_text=PRODUCT)
    expect(row.get_by_role("cell").nth(0)).to_have_text("8")
    expect(row.get_by_role("cell").nth(1)).to_have_text("8")
    expect(row.get_by_role("cell").nth(2)).to_have_text(re.compile(r"^0(\s|$)"))
    expect(page.locator("#over-assigned")).to_have_count(0)
    page.goto(f"/o/{slug}/usage/")
    usage = page.locator("#unassigned-table").get_by_role("row").filter(has_text=PRODUCT)
    expect(usage.get_by_role("cell").nth(0)).to_have_text("8")
    expect(usage.get_by_role("cell").nth(1)).to_have_text("8")

    with tenant_context(owner.organization):
        assert Subscription.objects.get(pk=subscription.pk).quantity == 8
        released = LicenseAssignment.objects.for_org(owner.organization).filter(sku=pool, user__in=stale)
        assert set(released.values_list("state", flat=True)) == {LicenseAssignment.State.REMOVED}
    graph = default_client().graph
    for user in stale:  # and in the tenant itself
        details = graph.license_details(tenant_id=demo.DEMO_TENANT_ID, user_id=str(user.graph_id))
        assert str(pool.sku_id) not in [d.sku_id for d in details]
