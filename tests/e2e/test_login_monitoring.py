"""Login monitoring in the browser: flags on the person's sign-in activity, and the owner's sign-in networks
page (errors explained on the field, the list saved). The accessibility gate checks every page reached."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_flags_on_the_activity_page_and_the_sign_in_networks_form(page, make_member):
    from accounts.models import SignInEvent
    from security.models import LoginSignal

    member = make_member(role="owner")
    earlier = SignInEvent.objects.create(occurred_at=timezone.now() - timedelta(hours=2), user=member.user,
                                         ip_address="192.0.2.10", succeeded=True, factor="password")
    LoginSignal.objects.create(occurred_at=earlier.occurred_at, user=member.user, sign_in_event=earlier,
                               kind="impossible_travel", risk=2, response="step_up", detail={"km": 16000})
    sign_in(page, email=member.email, app=member.app, path="/accounts/activity/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in activity")
    expect(page.get_by_role("cell", name="Impossible travel")).to_be_visible()

    slug = member.organization.slug
    page.goto(f"/o/{slug}/security/activity/")
    page.get_by_role("link", name="Sign-in networks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in networks")
    field = page.get_by_label("Allowed networks")
    field.fill("10.20.30.0/24")
    page.get_by_role("button", name="Save networks").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct the problem below.")
    expect(page.get_by_label("Allowed networks")).to_have_accessible_description(
        re.compile(r"would sign you out for good"))
    page.get_by_label("Allowed networks").fill("127.0.0.0/8\n10.20.30.0/24")
    page.get_by_role("button", name="Save networks").click()
    expect(page.get_by_text("Sign-in networks saved.")).to_be_visible()
    expect(page.get_by_label("Allowed networks")).to_have_value("127.0.0.0/8\n10.20.30.0/24")
