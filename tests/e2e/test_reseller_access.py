"""The customer's Reseller access page in the browser: empty, then a pending request approved, an
emergency access listed afterwards, access revoked, the policy saved (axe-core checks each page)."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import confirm_dialog, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_owner_sees_approves_and_revokes_reseller_access(page, make_member):
    from accounts import grants
    from accounts.models import StaffGrant, StaffRole
    from accounts.tests.factories import UserFactory

    owner = make_member(role="owner")
    org = owner.organization
    url = f"/o/{org.slug}/team/reseller-access/"
    sign_in(page, email=owner.email, app=owner.app, path=url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Reseller access")
    expect(page.get_by_text("No requests waiting")).to_be_visible()
    expect(page.get_by_text("No reseller staff have access")).to_be_visible()

    staff = UserFactory(is_staff=True, is_superuser=True, full_name="Nestor Wilke")
    request = grants.staff_grant_request(
        organization=org,
        staff=staff,
        roles=[StaffRole.LICENSE_OPERATOR],
        duration=timedelta(hours=8),
        justification="Ticket 4711: seats",
    )
    grants.staff_grant_break_glass(
        organization=org, staff=staff, roles=[StaffRole.SUPPORT_READER], duration=timedelta(hours=1), reason="Outage P1"
    )
    page.goto(url)
    pending = page.get_by_role("region", name="Waiting for your approval")
    expect(pending).to_contain_text("Ticket 4711: seats")
    expect(page.get_by_role("region", name="Emergency (break-glass) access")).to_contain_text("Outage P1")
    confirm_dialog(page, "Approve", scope=pending)
    expect(page.get_by_text("Access approved.")).to_be_visible()
    assert StaffGrant.objects.get(pk=request.pk).status == StaffGrant.Status.ACTIVE

    now = page.get_by_role("region", name="Access now")
    expect(now).to_contain_text("License operator")
    confirm_dialog(page, "Revoke", scope=now.get_by_role("row", name=re.compile("License operator")))
    expect(page.get_by_text("Access revoked.")).to_be_visible()
    assert StaffGrant.objects.get(pk=request.pk).status == StaffGrant.Status.REVOKED

    page.get_by_label("Support reader").check()
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Reseller access policy saved.")).to_be_visible()
    assert grants.staff_access_policy(org) == [StaffRole.SUPPORT_READER]
