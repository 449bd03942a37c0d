"""Login monitoring in the real sign-in flow: each detection takes effect, is recorded and is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.test import Client, TestCase
from django.urls import reverse

from accounts.models import SignInEvent, StaffRole
from accounts.tests.factories import (
    DEFAULT_PASSWORD,
    MembershipFactory,
    StaffGrantFactory,
    TOTPDeviceFactory,
    UserFactory,
)
from accounts.tests.helpers import totp_code, verified_client
from core.models import AuditEvent
from core.tenancy import tenant_context
from security.models import LoginSignal, SignInPolicy
from security.monitoring import step_up_cache_key

pytestmark = pytest.mark.django_db

NEW_YORK_IP = "203.0.113.5"
SYDNEY_IP = "192.0.2.5"
FRANKFURT_IP = "198.51.100.7"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def _password(client, user, ip, password=DEFAULT_PASSWORD):
    with TestCase.captureOnCommitCallbacks(execute=True):  # the emails go out on commit
        return client.post(reverse("accounts:login"), {"username": user.email, "password": password}, REMOTE_ADDR=ip)


def _code(client, code, ip=NEW_YORK_IP, **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reverse("accounts:mfa_verify"), {"code": code}, REMOTE_ADDR=ip, **kwargs)


def _full_sign_in(client, user, ip):
    response = _password(client, user, ip)
    assert response.status_code == 302, response.content[:500]
    device = user.totpdevice_set.get()
    verified = _code(client, totp_code(device), ip)
    assert verified.status_code == 302
    return verified


@pytest.fixture
def person():
    user = UserFactory(full_name="Ada Example")
    TOTPDeviceFactory(user=user)
    return user


def test_a_new_device_is_flagged_and_the_person_asked_was_this_you(person):
    with time_machine.travel(START, tick=False):
        _full_sign_in(Client(), person, NEW_YORK_IP)
    assert not LoginSignal.objects.exists() and not mail.outbox  # the first sign-in sets the baseline
    with time_machine.travel(START + timedelta(days=1), tick=False):
        response = _password(Client(), person, "203.0.113.77")  # another browser, same /24
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:mfa_verify"))
    signal = LoginSignal.objects.get()
    assert (signal.kind, signal.response, signal.user) == ("new_device", "notify", person)
    (message,) = mail.outbox
    assert message.to == [person.email] and "was this you" in message.subject.lower()
    assert "New device" in message.body and "New York, US" in message.body
    assert AuditEvent.unscoped_objects.filter(action="security.login_signal", target_id=str(person.pk)).exists()


def test_impossible_travel_makes_every_session_step_up_its_second_factor(person, settings):
    settings.SESSION_IDLE_SECONDS = 24 * 3600  # the first session idles for hours of travelled time
    # Close to now: the step-up mark lives in the cache, whose expiry runs on the real clock.
    start = datetime.now(UTC) - timedelta(hours=3)
    with time_machine.travel(start, tick=False):
        _full_sign_in(Client(), person, NEW_YORK_IP)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        home = verified_client(Client(), person)
        assert home.get(reverse("accounts:activity")).status_code == 200
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        far = Client()
        assert _password(far, person, SYDNEY_IP).status_code == 302
    kinds = set(LoginSignal.objects.values_list("kind", flat=True))
    assert "impossible_travel" in kinds
    assert set(LoginSignal.objects.values_list("response", flat=True)) == {"step_up"}
    signal = LoginSignal.objects.get(kind="impossible_travel")
    assert signal.detail["from"] == "US" and signal.detail["to"] == "AU" and signal.detail["km"] > 15000
    assert cache.get(step_up_cache_key(person.pk))
    # The session that was verified before must prove its second factor again, on its very next request.
    response = home.get(reverse("accounts:activity"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:mfa_verify"))
    device = person.totpdevice_set.get()
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31), tick=False):
        assert _code(home, totp_code(device)).status_code == 302
        assert home.get(reverse("accounts:activity")).status_code == 200
    assert "fresh second factor" in mail.outbox[-1].body or "confirm your second factor" in mail.outbox[-1].body


def test_outside_the_allow_list_is_refused_with_a_reason_and_security_is_alerted(person, settings):
    settings.SECURITY_ALERT_EMAILS = ("soc@reseller.example",)
    membership = MembershipFactory(user=person)
    with tenant_context(membership.organization):
        SignInPolicy.objects.create(organization=membership.organization, allowed_networks=["198.51.100.0/24"])
    client = Client()
    response = _password(client, person, NEW_YORK_IP)
    assert response.status_code == 403
    assert b"allows sign-in only from its own networks" in response.content
    assert "_auth_user_id" not in client.session
    assert LoginSignal.objects.get().kind == "outside_allow_list"
    alert = next(m for m in mail.outbox if m.to == ["soc@reseller.example"])
    assert "Outside the organisation" in alert.subject
    assert _password(Client(), person, FRANKFURT_IP).status_code == 302
    page = verified_client(Client(), person).get(reverse("accounts:activity")).content.decode()
    assert "Blocked: Outside the organisation" in page


def test_repeated_wrong_codes_end_the_half_signed_in_session(person):
    client = Client()
    assert _password(client, person, NEW_YORK_IP).status_code == 302
    for _ in range(2):
        assert _code(client, "000000").status_code == 400
    response = _code(client, "000000", follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:login")
    assert b"Too many wrong codes" in response.content
    assert "_auth_user_id" not in client.session
    assert LoginSignal.objects.get().kind == "mfa_failures"
    assert any(m.to == [person.email] for m in mail.outbox)


def test_a_spraying_source_is_blocked_even_when_a_password_works(person, settings):
    settings.AXES_FAILURE_LIMIT = 100  # show our detector on its own, not django-axes' per-IP lockout
    for n in range(5):
        victim = UserFactory()
        _password(Client(), victim, "198.51.100.66", password="Winter2026!")
    assert LoginSignal.objects.filter(kind="password_spray").count() == 1
    response = _password(Client(), person, "198.51.100.66")
    assert response.status_code == 403 and b"paused for an hour" in response.content


def test_the_activity_page_shows_flags_and_pages(person):
    with time_machine.travel(START, tick=False):
        _full_sign_in(Client(), person, NEW_YORK_IP)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        _password(Client(), person, FRANKFURT_IP)
    for n in range(30):
        SignInEvent.objects.create(occurred_at=START - timedelta(days=1, minutes=n), user=person, succeeded=True,
                                   factor="password")
    client = verified_client(Client(), person)
    page = client.get(reverse("accounts:activity")).content.decode()
    assert "Impossible travel" in page and "New device" in page and "New network" in page
    assert "<th scope=\"col\">Flags</th>" in page and "page=2" in page
    assert client.get(reverse("accounts:activity") + "?page=2").status_code == 200


def test_staff_see_the_security_events_queue_read_only_for_the_people_their_grants_cover(person):
    other = UserFactory()
    TOTPDeviceFactory(user=other)
    membership = MembershipFactory(user=person)
    MembershipFactory(user=other)  # in an organisation no grant covers
    with time_machine.travel(START, tick=False):
        _full_sign_in(Client(), person, NEW_YORK_IP)
        _full_sign_in(Client(), other, NEW_YORK_IP)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        _password(Client(), person, SYDNEY_IP)
        _password(Client(), other, SYDNEY_IP)
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTPDeviceFactory(user=staff)
    client = verified_client(Client(), staff)
    url = reverse("admin:security_loginsignal_changelist")
    assert client.get(url).context["cl"].result_count == 0  # no grant, nobody's findings: superusers included
    grant = StaffGrantFactory(
        staff=staff, organization=membership.organization, roles=[StaffRole.SECURITY_RESPONDER]
    )
    medium = client.get(url + "?risk__exact=2")
    assert [(s.kind, s.user_id) for s in medium.context["cl"].result_list] == [("impossible_travel", person.pk)]
    viewed = AuditEvent.unscoped_objects.filter(action="staff.viewed_list", organization=membership.organization)
    assert viewed.get().metadata["grant"] == str(grant.pk)  # the read is in the chain, naming the grant
    assert "Impossible travel" in medium.content.decode()
    assert client.get(url + "?risk__exact=3").context["cl"].result_count == 0
    assert client.get(url + "?kind__exact=new_device").context["cl"].result_count == 1
    signal = LoginSignal.objects.first()
    delete = reverse("admin:security_loginsignal_delete", args=[signal.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403


def test_the_staff_sign_in_is_refused_the_same_way(person):
    staff = UserFactory(is_staff=True, is_superuser=True)
    device = TOTPDeviceFactory(user=staff)
    membership = MembershipFactory(user=staff)
    with tenant_context(membership.organization):
        SignInPolicy.objects.create(organization=membership.organization, allowed_networks=["198.51.100.0/24"])
    client = Client()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/admin/login/", {"username": staff.email, "password": DEFAULT_PASSWORD,
                                                 "otp_token": totp_code(device), "next": "/admin/"},
                               REMOTE_ADDR=NEW_YORK_IP)
    assert response.status_code == 200 and b"allows sign-in only from its own networks" in response.content
    assert "_auth_user_id" not in client.session
    assert LoginSignal.objects.get(user=staff).response == "block"
