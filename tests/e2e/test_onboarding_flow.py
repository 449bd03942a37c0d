"""Issue 2 acceptance: an owner signs up, confirms the email, enrolls an authenticator, invites a
license admin; the invitee joins through the emailed link and sees only what the role allows."""

import re

import pytest
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from .conftest import enroll_authenticator, fill_signup_person

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "grace@contoso.example"
INVITEE_EMAIL = "linus@contoso.example"
ORG_NAME = "Contoso Trading Ltd"


def _first_url(names, **kwargs) -> str:
    for name in names:
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
    return ""


def test_owner_signs_up_invites_a_license_admin_who_joins_with_limited_access(new_page, mailbox):
    owner = new_page()

    # Sign up: the organisation and its owner.
    owner.goto("/accounts/signup/")
    expect(owner.get_by_role("heading", level=1)).to_have_text("Create your organisation's account")
    fill_signup_person(owner, full_name="Grace Hopper", email=OWNER_EMAIL)
    owner.get_by_label("Organisation legal name").fill(ORG_NAME)
    owner.get_by_label("Country").fill("de")
    owner.get_by_label("Time zone").select_option("Europe/Berlin")
    owner.get_by_role("button", name="Create account").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Confirm your email")
    expect(owner.get_by_role("main")).to_contain_text(OWNER_EMAIL)

    # Sign-up does not sign in (it answers the same for an address that already has an account),
    # so before the email is confirmed the dashboard is out of reach.
    owner.goto("/")
    expect(owner.get_by_role("heading", level=1)).to_have_text("Sign in")

    # The link from the email confirms the address and leads on to the second factor.
    owner.goto(mailbox.link(OWNER_EMAIL, "/accounts/verify-email/"))
    expect(owner.get_by_role("status").filter(has_text="Your email is confirmed")).to_be_visible()
    enroll_authenticator(owner)

    # Recovery codes, shown once.
    expect(owner.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    codes = owner.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    owner.get_by_role("link", name="I have saved my codes, continue").click()

    # The organisation's overview.
    expect(owner).to_have_url(re.compile(r"/o/[\w-]+/$"))
    slug = owner.url.rstrip("/").rsplit("/", 1)[-1]
    expect(owner.get_by_role("heading", level=1)).to_have_text("Welcome, Grace Hopper")
    org_nav = owner.get_by_role("navigation", name=ORG_NAME)
    expect(org_nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(org_nav.get_by_role("link", name="Settings")).to_be_visible()

    # Team -> invite a license admin.
    org_nav.get_by_role("link", name="Team").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Team")
    owner.get_by_role("link", name="Invite someone").first.click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Invite someone")
    owner.get_by_label("Email").fill(INVITEE_EMAIL)
    owner.get_by_label("Role").select_option(label="License admin")
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_role("status").filter(has_text=f"Invitation sent to {INVITEE_EMAIL}")).to_be_visible()
    invitations = owner.get_by_role("region", name="Invitations")
    expect(invitations.get_by_role("row").filter(has_text=INVITEE_EMAIL)).to_contain_text("License admin")

    # Sign out from the user menu.
    owner.get_by_role("group").filter(has=owner.get_by_text("Account menu for")).locator("summary").click()
    owner.get_by_role("button", name="Sign out").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(owner.get_by_role("status").filter(has_text="You are signed out.")).to_be_visible()
    owner.goto(f"/o/{slug}/")
    expect(owner.get_by_role("heading", level=1)).to_have_text("Sign in")

    # The invitee opens the emailed link in their own browser and signs up.
    invitee = new_page()
    invitee.goto(mailbox.link(INVITEE_EMAIL, "/accounts/invitations/"))
    expect(invitee.get_by_role("heading", level=1)).to_have_text(f"Join {ORG_NAME}")
    expect(invitee.get_by_role("main")).to_contain_text("License admin")
    expect(invitee.get_by_label("Work email")).to_have_value(INVITEE_EMAIL)
    fill_signup_person(invitee, full_name="Linus Admin", email=None)
    invitee.get_by_role("button", name="Create account and join").click()
    enroll_authenticator(invitee)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    invitee.get_by_role("link", name="I have saved my codes, continue").click()

    # Lands in the organisation, as a license admin.
    expect(invitee).to_have_url(re.compile(rf"/o/{slug}/$"))
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Welcome, Linus Admin")
    nav = invitee.get_by_role("navigation", name=ORG_NAME)
    expect(nav).to_contain_text("License admin")
    for hidden in ("Billing", "Settings", "Privacy"):
        expect(nav.get_by_text(hidden, exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="Team")).to_be_visible()
    expect(nav.get_by_role("link", name="Security")).to_be_visible()
    for listed in ("Licenses", "Subscriptions", "Catalog"):  # links once those sections exist
        expect(nav).to_contain_text(listed)

    # Team: can see the members, cannot invite, no API keys tab.
    nav.get_by_role("link", name="Team").click()
    members = invitee.get_by_role("region", name="Members")
    expect(members.get_by_role("row").filter(has_text=OWNER_EMAIL)).to_contain_text("Owner")
    expect(members.get_by_role("row").filter(has_text=INVITEE_EMAIL)).to_contain_text("License admin")
    expect(invitee.get_by_role("link", name="Invite someone")).to_have_count(0)
    expect(invitee.get_by_role("navigation", name="Team").get_by_role("link", name="API keys")).to_have_count(0)
    expect(invitee.get_by_role("region", name="Invitations")).to_have_count(0)

    # Typing the addresses of pages the role does not allow gives a clear 403.
    forbidden = [
        reverse("team:api_keys", kwargs={"org_slug": slug}),
        reverse("team:invitation_create", kwargs={"org_slug": slug}),
        reverse("team:settings", kwargs={"org_slug": slug}),
    ]
    billing_url = _first_url(("billing:overview", "billing:invoices"), org_slug=slug)
    if billing_url:
        forbidden.append(billing_url)
    for url in forbidden:
        response = invitee.goto(url)
        assert response.status == 403, url
        expect(invitee.get_by_role("heading", level=1)).to_have_text("You do not have access to this")

    # Sections a license admin works in open normally (those already built).
    allowed = [reverse("security:activity", kwargs={"org_slug": slug})]
    allowed += [
        url
        for url in (
            _first_url(("licensing:licenses", "licensing:assignments"), org_slug=slug),
            _first_url(("licensing:subscriptions",), org_slug=slug),
            _first_url(("licensing:catalog",), org_slug=slug),
        )
        if url
    ]
    for url in allowed:
        response = invitee.goto(url)
        assert response.status == 200, url
        expect(invitee.get_by_role("navigation", name=ORG_NAME)).to_be_visible()
