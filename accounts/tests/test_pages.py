"""The MFA gate, sessions, password reset, profile, invitations, admin and hostile input."""

import re

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.invitations import invitation_create
from accounts.middleware import MFA_EXEMPT_URL_NAMES
from accounts.models import Membership, Organization, SignInEvent, User, UserSession
from core.models import AuditEvent

from .factories import DEFAULT_PASSWORD, MembershipFactory, TOTPDeviceFactory, UserFactory
from .helpers import totp_code, verified_client

pytestmark = pytest.mark.django_db

SOME_ID = "00000000-0000-0000-0000-000000000001"
KWARG_SETS = [
    None,
    {"org_slug": "org-x"},
    {"org_slug": "org-x", "pk": SOME_ID},
    {"org_slug": "org-x", "pk": 1},
    {"token": "abc"},
    {"uidb64": "MQ", "token": "abc"},
    {"pk": SOME_ID},
    {"pk": 1},
]


def _named_urls(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace or namespace
            yield from _named_urls(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}:{entry.name}" if namespace else entry.name


def _concrete_path(name):
    for kwargs in KWARG_SETS:
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
    return None


def test_mfa_gate_blocks_every_non_exempt_page(client):
    membership = MembershipFactory(organization__slug="org-x")
    TOTPDeviceFactory(user=membership.user)
    client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    checked = 0
    for name in sorted(set(_named_urls())):
        if name in MFA_EXEMPT_URL_NAMES or name.startswith("admin:") or name.startswith("api-"):
            continue
        path = _concrete_path(name)
        if path is None:
            continue
        response = client.get(path)
        checked += 1
        if path.startswith("/api/"):
            assert response.status_code in (401, 403), name
        else:
            assert response.status_code == 302, name
            assert response["Location"].startswith(reverse("accounts:mfa_verify")), name
    assert checked >= 8


def test_home_without_organisation_goes_to_create_one(client):
    user = UserFactory()
    verified_client(client, user)
    assert client.get("/")["Location"] == reverse("accounts:signup_organization")
    response = client.post(
        reverse("accounts:signup_organization"),
        {"legal_name": "北京科技有限公司", "country": "cn", "time_zone": "Asia/Shanghai"},
    )
    organization = Organization.objects.get()
    assert response["Location"] == f"/o/{organization.slug}/"
    assert Membership.objects.get(user=user).role == "owner"


def test_sessions_list_and_revoke(client):
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    browsers = []
    for agent in ("Laptop", "Phone", "Tablet"):
        browser = Client(HTTP_USER_AGENT=agent)
        browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
        browser.post(reverse("accounts:mfa_verify"), {"code": totp_code(user.totpdevice_set.get(), at=None)})
        browsers.append(browser)
    assert UserSession.objects.filter(user=user).count() == 3
    laptop, phone, tablet = browsers
    page = laptop.get(reverse("accounts:sessions"))
    assert page.status_code == 200
    assert b"This browser" in page.content and b"Phone" in page.content

    phone_session = next(s for s in UserSession.objects.filter(user=user) if s.user_agent == "Phone")
    laptop.post(reverse("accounts:sessions"), {"session": str(phone_session.pk)})
    assert not Session.objects.filter(session_key=phone_session.session_key).exists()
    assert phone.get(reverse("accounts:profile")).status_code == 302  # signed out

    laptop.post(reverse("accounts:sessions"), {"scope": "others"})
    assert [s.user_agent for s in UserSession.objects.filter(user=user)] == ["Laptop"]
    assert tablet.get(reverse("accounts:profile"))["Location"].startswith(reverse("accounts:login"))
    assert laptop.get(reverse("accounts:profile")).status_code == 200


def test_cannot_revoke_another_users_session(client):
    victim = UserFactory()
    TOTPDeviceFactory(user=victim)
    Client().post(reverse("accounts:login"), {"username": victim.email, "password": DEFAULT_PASSWORD})
    victim_session = UserSession.objects.get(user=victim)
    verified_client(client, UserFactory())
    for value in (str(victim_session.pk), "not-a-uuid"):
        response = client.post(reverse("accounts:sessions"), {"session": value}, follow=True)
        assert b"not found" in response.content
    assert UserSession.objects.filter(pk=victim_session.pk).exists()


def test_logout_ends_tracked_session(client):
    user = UserFactory()
    client.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    assert UserSession.objects.filter(user=user).exists()
    client.post(reverse("accounts:logout"))
    assert not UserSession.objects.filter(user=user).exists()
    assert "_auth_user_id" not in client.session


def test_activity_page_lists_own_events_paginated(client):
    user, other = UserFactory(), UserFactory()
    for _ in range(30):
        Client().post(
            reverse("accounts:login"), {"username": user.email, "password": "nope nope nope"}, REMOTE_ADDR="192.0.2.1"
        )
        from django.core.cache import cache

        cache.clear()
    Client().post(reverse("accounts:login"), {"username": other.email, "password": "nope"}, REMOTE_ADDR="192.0.2.200")
    verified_client(client, user)
    first = client.get(reverse("accounts:activity"))
    assert first.status_code == 200
    assert first.context["page_obj"].paginator.count == SignInEvent.objects.filter(user=user).count()
    assert len(first.context["events"]) == 25
    assert client.get(reverse("accounts:activity") + "?page=2").status_code == 200
    assert all(event.user_id == user.pk for event in first.context["events"])


def test_password_reset_does_not_reveal_accounts(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="known@example.com")
    other_browser = Client()
    other_browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    known = client.post(reverse("accounts:password_reset"), {"email": "KNOWN@example.com"})
    unknown = client.post(reverse("accounts:password_reset"), {"email": "unknown@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]

    link = re.search(r"/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    new_password = "a brand new passphrase 7"
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert response["Location"] == reverse("accounts:password_reset_complete")
    assert not UserSession.objects.filter(user=user).exists()
    assert other_browser.get(reverse("accounts:profile"))["Location"].startswith(reverse("accounts:login"))
    assert User.objects.get(pk=user.pk).check_password(new_password)
    assert AuditEvent.unscoped_objects.filter(action="user.password_reset", actor_id=str(user.pk)).exists()


def test_password_change_signs_out_other_browsers_and_is_audited(client):
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    browsers = []
    for agent in ("Laptop", "Phone"):
        browser = Client(HTTP_USER_AGENT=agent)
        browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
        browser.post(reverse("accounts:mfa_verify"), {"code": totp_code(user.totpdevice_set.get(), at=None)})
        browsers.append(browser)
    laptop, phone = browsers
    new_password = "another sturdy passphrase 9"
    response = laptop.post(
        reverse("accounts:password_change"),
        {"old_password": DEFAULT_PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response["Location"] == reverse("accounts:profile")
    assert [s.user_agent for s in UserSession.objects.filter(user=user)] == ["Laptop"]
    assert b"This browser" in laptop.get(reverse("accounts:sessions")).content  # still tracked under its new key
    assert phone.get(reverse("accounts:profile"))["Location"].startswith(reverse("accounts:login"))
    event = AuditEvent.unscoped_objects.get(action="user.password_changed", actor_id=str(user.pk))
    assert event.metadata == {"sessions": 1}


def test_profile_update_with_unicode_and_overlong_values(client):
    user = UserFactory()
    verified_client(client, user)
    response = client.post(
        reverse("accounts:profile"), {"full_name": "Łukasz 🚀 Żółć", "job_title": "Directeur général"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.full_name == "Łukasz 🚀 Żółć"
    response = client.post(reverse("accounts:profile"), {"full_name": "x" * 151, "job_title": "ok"})
    assert response.status_code == 400
    assert b"id_full_name_error" in response.content and b'aria-describedby="id_full_name_error"' in response.content
    response = client.post(reverse("accounts:profile"), {"full_name": "line\nbreak"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "overrides",
    [
        {"email": "not an email"},
        {"password2": "something else entirely"},
        {"password1": "short", "password2": "short"},
        {"country": "Germany"},
        {"country": "1!"},
        {"time_zone": "Mars/Olympus"},
        {"legal_name": "x" * 201},
        {"full_name": ""},
        {"full_name": "a" * 10_000},
    ],
)
def test_signup_rejects_bad_input_with_form_errors(client, overrides):
    data = {
        "full_name": "Ana",
        "email": "ana@example.com",
        "password1": "a sturdy passphrase 42",
        "password2": "a sturdy passphrase 42",
        "legal_name": "Ana Ltd",
        "country": "PT",
        "time_zone": "Europe/Lisbon",
        **overrides,
    }
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 400
    assert b'aria-invalid="true"' in response.content
    assert not User.objects.exists() and not Organization.objects.exists()


def _signup(client, email):
    return client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Ana",
            "email": email,
            "password1": "a sturdy passphrase 42",
            "password2": "a sturdy passphrase 42",
            "legal_name": "Ana Ltd",
            "country": "PT",
            "time_zone": "Europe/Lisbon",
        },
    )


def _check_email_page(client):
    page = client.get(reverse("accounts:verify_email_sent"))
    assert page.status_code == 200
    return page.content.decode()


def test_signup_with_taken_email_answers_like_a_new_signup(django_capture_on_commit_callbacks):
    """Sign-up must not reveal whether an address is registered: same redirect, same page, same cookies;
    the holder gets a "someone tried to sign up" email instead of a new account."""
    holder = UserFactory(email="taken@example.com")
    fresh, taken = Client(), Client()
    with django_capture_on_commit_callbacks(execute=True):
        fresh_response = _signup(fresh, "new@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        taken_response = _signup(taken, "Taken@Example.com")

    assert taken_response.status_code == fresh_response.status_code == 302
    assert taken_response["Location"] == fresh_response["Location"] == reverse("accounts:verify_email_sent")
    assert set(taken_response.cookies) == set(fresh_response.cookies)
    assert "_auth_user_id" not in fresh.session and "_auth_user_id" not in taken.session
    fresh_page = _check_email_page(fresh).replace("new@example.com", "EMAIL")
    taken_page = _check_email_page(taken).replace("Taken@Example.com", "EMAIL")
    strip_csrf = re.compile(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]+"')
    assert strip_csrf.sub("", fresh_page) == strip_csrf.sub("", taken_page)

    assert Organization.objects.count() == 1 and User.objects.count() == 2
    assert not Membership.objects.filter(user=holder).exists()
    notice = next(m for m in mail.outbox if m.to == [holder.email])
    assert "tried to sign up" in notice.subject and "/accounts/password-reset/" in notice.body
    assert not any("/accounts/verify-email/" in m.body for m in mail.outbox if m.to == [holder.email])


def test_resend_after_taken_email_signup_notifies_the_holder_again(
    client, time_machine, django_capture_on_commit_callbacks
):
    holder = UserFactory(email="taken@example.com")
    time_machine.move_to(timezone.now())
    _signup(client, "taken@example.com")
    time_machine.shift(120)
    mail.outbox = []
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:verify_email_sent"))
    assert response["Location"] == reverse("accounts:verify_email_sent")
    assert [m.to for m in mail.outbox] == [[holder.email]]
    assert not Organization.objects.exists()


def test_check_email_page_needs_a_signup_or_a_signed_in_person(client):
    assert client.get(reverse("accounts:verify_email_sent"))["Location"] == reverse("accounts:login")
    assert client.post(reverse("accounts:verify_email_sent"))["Location"] == reverse("accounts:login")


def test_csrf_failure_gives_friendly_403():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:login"), {"username": "a@example.com", "password": "x"})
    assert response.status_code == 403
    assert b"<html" in response.content.lower()
    assert b"Traceback" not in response.content


def test_admin_requires_a_verified_second_factor(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    device = TOTPDeviceFactory(user=staff)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/accounts/user/").status_code == 302
    verified_client(client, staff)
    assert client.get("/admin/").status_code == 200
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert device.key.encode() not in page.content
    assert staff.password.encode() not in client.get(f"/admin/accounts/user/{staff.pk}/change/").content


def _invite(django_capture_on_commit_callbacks, email="new.person@example.com", role="viewer"):
    owner = MembershipFactory()
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(organization=owner.organization, email=email, role=role, actor=owner.user)
    token = re.search(r"/accounts/invitations/(\S+)/", mail.outbox[-1].body).group(1)
    return owner.organization, token


def test_invitation_signup_then_mfa_enrollment(client, django_capture_on_commit_callbacks):
    organization, token = _invite(django_capture_on_commit_callbacks)
    url = reverse("accounts:invitation_accept", kwargs={"token": token})
    page = client.get(url)
    assert page.status_code == 200
    assert organization.display_name.encode() in page.content and b"Viewer" in page.content
    assert b'value="new.person@example.com"' in page.content
    data = {"full_name": "New Person", "password1": "a sturdy passphrase 42", "password2": "a sturdy passphrase 42"}
    response = client.post(url, {**data, "email": "someone.else@example.com"})
    assert response.status_code == 400 and b"invitation was sent to" in response.content
    response = client.post(url, {**data, "email": "New.Person@example.com"})
    assert response["Location"].startswith(reverse("accounts:mfa_enroll"))
    user = User.objects.get_by_email("new.person@example.com")
    assert user.email_verified
    assert Membership.objects.get(user=user, organization=organization).role == "viewer"
    assert client.get(url).status_code == 400  # used


def test_existing_user_accepts_invitation(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="member@example.com")
    organization, token = _invite(django_capture_on_commit_callbacks, email="member@example.com")
    verified_client(client, user)
    url = reverse("accounts:invitation_accept", kwargs={"token": token})
    assert b"Accept invitation" in client.get(url).content
    response = client.post(url)
    assert response["Location"] == f"/o/{organization.slug}/"
    assert client.get(response["Location"]).status_code == 200


def test_wrong_user_or_tampered_invitation(client, django_capture_on_commit_callbacks):
    organization, token = _invite(django_capture_on_commit_callbacks, email="invited@example.com")
    verified_client(client, UserFactory(email="intruder@example.com"))
    url = reverse("accounts:invitation_accept", kwargs={"token": token})
    response = client.post(url)
    assert response.status_code == 400 and b"different email" in response.content
    assert not Membership.objects.filter(
        organization=organization, user__email_index=User.objects.get_by_email("intruder@example.com").email_index
    ).exists()
    assert client.get(reverse("accounts:invitation_accept", kwargs={"token": token[:-2] + "zz"})).status_code == 400


def test_password_only_session_cannot_accept_an_invitation(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="half.signed.in@example.com")
    organization, token = _invite(django_capture_on_commit_callbacks, email="half.signed.in@example.com")
    client.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    url = reverse("accounts:invitation_accept", kwargs={"token": token})
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_enroll"))
    assert not Membership.objects.filter(organization=organization, user=user).exists()
