"""Privacy requests in the browser: a customer's access report from request to download, and a public
deletion request verified by emailed code and carried out."""

from __future__ import annotations

import base64
import io
import re
import zipfile

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, Authenticator, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _officer():
    from accounts.tests.factories import TOTPDeviceFactory
    from privacy.tests.factories import make_officer

    user = make_officer(email="dpo@reseller.example", full_name="Olga Officer", password=PASSWORD)
    device = TOTPDeviceFactory(user=user)
    return user, Authenticator(base64.b32encode(device.bin_key).decode())


def _approve(page, reference: str) -> None:
    page.goto("/privacy/console/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy requests")
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".messages, [role=status], [role=alert]").first).to_contain_text("Approved")


def test_customer_requests_an_access_report_the_officer_approves_and_the_customer_downloads(
    new_page, make_member, settings, tmp_path
):
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "exports")
    customer = make_member(role="viewer", full_name="Carla Customer")
    page = new_page()
    sign_in(page, email=customer.email, app=customer.app)
    page.goto("/privacy/mine/")
    page.get_by_role("link", name="New request").first.click()
    page.get_by_label("What would you like?").select_option(label="Access (right to know)")
    page.get_by_label("Where do you live?").select_option(label="European Union, EEA or United Kingdom")
    page.get_by_role("button", name="Send request").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Request PR-[A-Z0-9]{4}-[A-Z0-9]{4}$"))
    reference = heading.inner_text().removeprefix("Request ")

    officer, app = _officer()
    desk = new_page()
    sign_in(desk, email=officer.email, app=app, path="/accounts/login/")
    _approve(desk, reference)
    expect(desk.get_by_role("heading", name="Your file")).to_be_visible()

    page.reload()
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"^Download")).click()
    download = download_info.value
    assert download.suggested_filename == f"{reference}.zip"
    archive = zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read()))  # noqa: SIM115
    assert {"report.html", "manifest.json", "data/accounts.user.json"} <= set(archive.namelist())
    assert customer.email in archive.read("data/accounts.user.json").decode()


def test_public_deletion_request_is_verified_by_email_code_and_carried_out(new_page, make_member, mailbox, settings):
    from accounts.models import User
    from privacy.tasks import run_due_erasures

    settings.PRIVACY_ERASURE_GRACE_DAYS = 0
    member = make_member(full_name="Dora Deleteme")
    page = new_page()  # no account in this browser
    page.goto("/privacy/")
    page.get_by_role("link", name="privacy request form").click()
    page.get_by_label("Your name").fill("Dora Deleteme")
    page.get_by_label("Your email address").fill(member.email)
    page.get_by_label("What would you like?").select_option(label="Deletion")
    page.get_by_label("Where do you live?").select_option(label="California")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Request PR-")
    reference = page.get_by_role("heading", level=1).inner_text().removeprefix("Request ")
    code = re.search(r"^\s+(\d{6})\s*$", mailbox.to(member.email)[-1].body, re.M).group(1)
    page.get_by_label("Code from the email").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("your request is confirmed")

    officer, app = _officer()
    desk = new_page()
    sign_in(desk, email=officer.email, app=app, path="/accounts/login/")
    _approve(desk, reference)
    expect(desk.get_by_role("heading", name=re.compile(r"^Erasure"))).to_be_visible()

    assert run_due_erasures() == 1  # the hourly beat task, after the (here zero) grace period
    desk.reload()
    expect(desk.get_by_role("heading", name="Erasure: Done")).to_be_visible()
    erased = User.objects.get(pk=member.user.pk)
    assert not erased.is_active and erased.email.endswith("@erased.invalid")
    assert any("is complete" in m.subject and "Erased:" in m.body for m in mailbox.to(member.email))
