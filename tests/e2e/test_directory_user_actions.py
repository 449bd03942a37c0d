"""A license admin's weekly directory work in the browser, against the Microsoft emulator: create a
user and read its temporary password once, then offboard it with the mailbox choice made explicit.

Celery runs eagerly: each action's operation has run by the time the redirect lands on its page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from licensing.tests.directory_helpers import FABRIKAM, link_tenant, run_sync

from .conftest import confirm_dialog, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]


def test_create_a_user_see_the_password_once_then_offboard(page, make_member, microsoft):
    member = make_member(role="license_admin")
    organization = member.organization
    link_tenant(organization)
    run_sync(organization)
    sign_in(page, email=member.email, app=member.app, path=f"/o/{organization.slug}/licenses/users/")

    page.get_by_role("link", name="New user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New user")
    page.get_by_label("Display name").fill("Mary Jackson")
    page.get_by_label("User name").fill("mary.jackson")
    page.get_by_label("Domain").select_option(label="@fabrikamdemo.onmicrosoft.com")
    page.get_by_label("Usage location").fill("US")
    page.get_by_role("button", name="Create user").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Create user")
    expect(page.locator("#action-status")).to_contain_text("Succeeded")
    expect(page.locator("#provisioning-timeline")).to_contain_text("In your directory")
    action_url = page.url
    confirm_dialog(page, "Show the password once", message="shown once and then erased")
    secret = page.locator("#temporary-password-value")
    expect(secret).to_be_visible()
    password = secret.inner_text()
    check = microsoft.session.post(
        f"{microsoft.base_url}/_emulator/tenants/{FABRIKAM}/users/mary.jackson@fabrikamdemo.onmicrosoft.com"
        "/password-check", json={"password": password}, timeout=10).json()
    assert check["matches"] and check["forceChangePasswordNextSignIn"]

    page.goto(action_url)
    expect(page.get_by_text("The temporary password was shown once and erased.")).to_be_visible()
    assert password not in page.content()

    page.get_by_role("link", name="Back to the user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mary Jackson")
    actions = page.get_by_role("region", name="Account actions", exact=True)
    actions.get_by_role("radio", name=re.compile("Convert to a shared mailbox")).check()
    confirm_dialog(page, "Offboard", message="The account itself is not deleted.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Offboard")
    expect(page.locator("#provisioning-timeline")).to_contain_text("License removal sent to Microsoft")
    expect(page.locator("#action-mailbox")).to_contain_text("Not yet done by the portal")

    page.get_by_role("link", name="Back to the user").click()
    expect(page.get_by_role("region", name="Account actions", exact=True)).to_contain_text("Offboarded on")
    expect(page.get_by_role("button", name="Unblock sign-in")).to_be_visible()
