"""Staff sign-in to the admin site leaves the same trail as a portal sign-in."""

import pytest
from django.test import Client

from accounts import mfa
from accounts.models import SignInEvent, UserSession
from accounts.reauth import SESSION_KEY as MFA_VERIFIED_AT
from accounts.signin import DEVICE_COOKIE

from .factories import DEFAULT_PASSWORD, TOTPDeviceFactory, UserFactory
from .helpers import totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture
def staff():
    user = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    TOTPDeviceFactory(user=user)
    return user


def _sign_in(client, email, password=DEFAULT_PASSWORD, code=""):
    return client.post(LOGIN, {"username": email, "password": password, "otp_token": code, "next": "/admin/"})


def _events(user):
    rows = SignInEvent.objects.filter(user=user).order_by("id")
    return list(rows.values_list("factor", "succeeded", "failure_reason"))


def test_password_and_code_sign_in_is_recorded_tracked_and_counts_as_recent_mfa(staff):
    client = Client()
    page = client.get(LOGIN)
    assert page.status_code == 200 and b'name="otp_token"' in page.content
    response = _sign_in(client, "OPS@example.com", code=totp_code(staff.totpdevice_set.get()))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert _events(staff) == [("password", True, ""), ("totp", True, "")]
    assert client.session[MFA_VERIFIED_AT]
    tracked = UserSession.objects.get(user=staff)
    assert tracked.session_key == client.session.session_key
    assert DEVICE_COOKIE in response.cookies
    assert SignInEvent.objects.filter(user=staff).values("device_index").distinct().count() == 1
    assert client.get("/admin/").status_code == 200


def test_wrong_password_is_recorded_and_signs_no_one_in(staff):
    client = Client()
    response = _sign_in(client, staff.email, password="not the password", code="123456")
    assert response.status_code == 200
    assert _events(staff) == [("password", False, "bad_credentials")]
    assert "_auth_user_id" not in client.session
    assert not UserSession.objects.exists()


def test_unknown_address_is_recorded_by_its_blind_index_only():
    _sign_in(Client(), "nobody@example.com", code="123456")
    event = SignInEvent.objects.get()
    assert (event.user, event.succeeded, event.failure_reason) == (None, False, "bad_credentials")
    assert event.email_index and "nobody" not in event.email_index


def test_wrong_or_missing_code_records_the_failed_factor(staff):
    client = Client()
    response = _sign_in(client, staff.email, code="000000")
    assert response.status_code == 200 and b"not valid" in response.content
    response = _sign_in(client, staff.email, code="")
    assert response.status_code == 200 and b"one of your recovery codes" in response.content
    assert _events(staff) == [("password", True, ""), ("totp", False, "bad_code"), ("password", True, "")]
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_recovery_code_signs_in_once(staff):
    code = mfa.recovery_codes_regenerate(user=staff)[0]
    client = Client()
    assert _sign_in(client, staff.email, code=code).status_code == 302
    assert _events(staff)[-1] == ("recovery", True, "")
    again = Client()
    assert _sign_in(again, staff.email, code=code).status_code == 200
    assert _events(staff)[-1] == ("recovery", False, "bad_code")


def test_right_password_on_a_non_staff_account_is_refused_and_recorded():
    user = UserFactory(email="customer@example.com")
    device = TOTPDeviceFactory(user=user)
    client = Client()
    response = _sign_in(client, user.email, code=totp_code(device))
    assert response.status_code == 200
    assert _events(user) == [("password", False, "bad_credentials")]
    assert "_auth_user_id" not in client.session


def _chain(user=None):
    from core.models import AuditEvent

    rows = AuditEvent.unscoped_objects.filter(action__startswith="signin.").order_by("sequence")
    if user is not None:
        rows = rows.filter(actor_id=str(user.pk))
    return [(e.action, e.metadata.get("factor"), e.metadata.get("reason")) for e in rows]


def test_sign_ins_failures_and_second_factors_are_in_the_audit_chain(staff):
    client = Client()
    _sign_in(client, staff.email, password="wrong")
    _sign_in(client, staff.email, code=totp_code(staff.totpdevice_set.get()))
    _sign_in(Client(), staff.email, code="000000")
    assert _chain(staff) == [
        ("signin.failed", "password", "bad_credentials"),
        ("signin.succeeded", "password", None),
        ("signin.succeeded", "totp", None),
        ("signin.succeeded", "password", None),
        ("signin.failed", "totp", "bad_code"),
    ]
    # An unknown address: recorded by the system actor, without the address.
    _sign_in(Client(), "nobody@example.com")
    [(action, factor, reason)] = _chain()[-1:]
    assert (action, factor, reason) == ("signin.failed", "password", "bad_credentials")
    from core.models import AuditEvent

    assert "nobody" not in str(AuditEvent.unscoped_objects.order_by("-sequence").first().metadata)
