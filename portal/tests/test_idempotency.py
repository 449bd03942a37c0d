"""Idempotency-Key on POST through the base API classes (exercised via POST /api/v1/invitations/)."""

import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from rest_framework.response import Response

from accounts.models import Invitation
from accounts.tests.api_support import api_client_for, key_client, make_api_key
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.api.idempotency import KEY_TTL, claim, purge_expired, request_fingerprint
from core.models import AuditEvent, IdempotencyRecord

pytestmark = pytest.mark.django_db

URL = "/api/v1/invitations/"


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def api_key(org):
    return make_api_key(org)


@pytest.fixture
def client(api_key):
    return key_client(api_key[1])


def invite(client, key, email="new@example.com", role="viewer"):
    return client.post(URL, {"email": email, "role": role}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_same_body_replays_first_response_without_running_twice(
    client, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = invite(client, "key-1")
        second = invite(client, "key-1")
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Invitation.objects.for_org(org).count() == 1
    assert AuditEvent.objects.for_org(org).filter(action="invitation.created").count() == 1
    assert len(mail.outbox) == 1


def test_replay_of_stored_error_response(client, org):
    first = invite(client, "key-bad", email="not-an-email")
    second = invite(client, "key-bad", email="not-an-email")
    assert first.status_code == second.status_code == 400
    assert second.json()["error"]["code"] == "validation_error"
    assert second["Idempotent-Replayed"] == "true"


def test_same_key_different_body_is_422(client, org):
    assert invite(client, "key-2", email="a@example.com").status_code == 201
    response = invite(client, "key-2", email="b@example.com")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["message"] == (
        "This Idempotency-Key was already used for a different request. Use a new key for a new request."
    )
    assert Invitation.objects.for_org(org).count() == 1


def test_duplicate_while_first_in_flight_is_409(client, org, api_key):
    body = b'{"email":"c@example.com","role":"viewer"}'
    IdempotencyRecord.objects.for_org(org).create(
        organization=org,
        caller=f"api_key:{api_key[0].pk}",
        key="key-3",
        fingerprint=request_fingerprint("POST", URL, body),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    response = client.post(URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-3")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    assert response.json()["error"]["message"] == (
        "A request with this Idempotency-Key is still being processed. Retry after it finishes."
    )
    assert not Invitation.objects.for_org(org).exists()


def test_expired_key_runs_the_request_again(client, org):
    assert invite(client, "key-4", email="d@example.com").status_code == 201
    IdempotencyRecord.objects.for_org(org).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = invite(client, "key-4", email="e@example.com")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Invitation.objects.for_org(org).count() == 2


def test_keys_are_per_organisation(client, org):
    other_org = OrganizationFactory()
    other = api_client_for(other_org)
    assert invite(client, "shared-key", email="f@example.com").status_code == 201
    response = invite(other, "shared-key", email="g@example.com")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_same_key_and_body_from_another_api_key_is_not_a_replay(client, org, django_capture_on_commit_callbacks):
    other = api_client_for(org)
    with django_capture_on_commit_callbacks(execute=True):
        first = invite(client, "shared-key", email="i@example.com")
        second = invite(other, "shared-key", email="i@example.com")
    assert first.status_code == 201
    # The second caller's request really ran: it is refused on its own merits, not answered with the first's response.
    assert "Idempotent-Replayed" not in second
    assert second.status_code == 400 and second.json()["error"]["fields"].keys() == {"email"}
    assert "id" not in second.json()
    assert IdempotencyRecord.objects.for_org(org).filter(key="shared-key").count() == 2


def test_same_key_from_two_api_keys_runs_both_requests(client, org):
    other = api_client_for(org)
    first = invite(client, "shared-key", email="j@example.com")
    second = invite(other, "shared-key", email="k@example.com")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first.json()["id"]
    assert Invitation.objects.for_org(org).count() == 2
    # Each caller still gets its own response back on retry.
    assert invite(client, "shared-key", email="j@example.com").json() == first.json()
    replay = invite(other, "shared-key", email="k@example.com")
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == second.json()


def test_signed_in_user_and_api_key_have_separate_keys(client, org, api_key):
    owner = MembershipFactory(organization=org, role="owner").user
    browser = verified_client(Client(), owner)

    def invite_in_browser(email):
        return browser.post(
            URL,
            json.dumps({"email": email, "role": "viewer"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="shared-key",
            HTTP_X_ORGANIZATION=org.slug,
        )

    assert invite(client, "shared-key", email="l@example.com").status_code == 201
    first = invite_in_browser("m@example.com")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    again = invite_in_browser("m@example.com")
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert invite_in_browser("n@example.com").status_code == 422
    callers = set(IdempotencyRecord.objects.for_org(org).values_list("caller", flat=True))
    assert callers == {f"user:{owner.pk}", f"api_key:{api_key[0].pk}"}


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-key"])
def test_bad_key_is_400(client, org, key):
    response = invite(client, key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert response.json()["error"]["message"] == "Idempotency-Key must be 1 to 255 printable ASCII characters."
    assert not Invitation.objects.for_org(org).exists()


def test_max_length_key_is_accepted(client):
    assert invite(client, "k" * 255).status_code == 201


def test_server_error_releases_the_key(client, org, monkeypatch):
    import accounts.api

    def boom(**kwargs):
        raise RuntimeError("database fell over")

    monkeypatch.setattr(accounts.api, "invitation_create", boom)
    client.raise_request_exception = False
    in_flight = IdempotencyRecord.objects.for_org(org).create(
        organization=org, caller="api_key:someone-else", key="key-5", fingerprint="f",
        expires_at=timezone.now() + KEY_TTL,
    )
    response = invite(client, "key-5")
    assert response.status_code == 500
    # Only this request's own claim is released; another caller's in-flight claim stays.
    assert list(IdempotencyRecord.objects.for_org(org).filter(key="key-5")) == [in_flight]
    monkeypatch.undo()
    retry = invite(client, "key-5")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry


def test_response_is_stored_encrypted(client, org):
    invite(client, "key-6", email="secret-person@example.com")
    record = IdempotencyRecord.objects.for_org(org).get(key="key-6")
    assert record.status_code == 201
    assert record.response_body["email"] == "secret-person@example.com"
    raw = IdempotencyRecord.objects.for_org(org).filter(pk=record.pk).values_list("response_body", flat=True).get()
    assert "secret-person" not in raw


def test_without_key_every_post_runs(client, org):
    assert client.post(URL, {"email": "h@example.com", "role": "viewer"}, format="json").status_code == 201
    assert not IdempotencyRecord.objects.for_org(org).exists()


def test_purge_task_deletes_only_expired_records(client, org):
    from portal.tasks import purge_idempotency_keys

    invite(client, "old", email="old@example.com")
    invite(client, "new", email="new2@example.com")
    IdempotencyRecord.objects.for_org(org).filter(key="old").update(expires_at=timezone.now() - timedelta(minutes=1))
    assert purge_idempotency_keys.delay().get() == 1
    assert list(IdempotencyRecord.objects.for_org(org).values_list("key", flat=True)) == ["new"]


def test_key_ttl_is_24_hours_on_both_sides_of_the_boundary(client, org):
    """A retry one second before the key expires is a replay; at the expiry instant the request runs again."""
    assert timedelta(hours=24) == KEY_TTL
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        assert invite(client, "ttl", email="ttl@example.com").status_code == 201
    record = IdempotencyRecord.objects.for_org(org).get(key="ttl")
    assert record.expires_at == start + KEY_TTL
    with time_machine.travel(start + KEY_TTL - timedelta(seconds=1), tick=False):
        replay = invite(client, "ttl", email="other@example.com")
        assert replay.status_code == 422  # still the first request's key
    with time_machine.travel(start + KEY_TTL, tick=False):
        again = invite(client, "ttl", email="other@example.com")
        assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Invitation.objects.for_org(org).count() == 2


def test_purge_deletes_at_the_expiry_instant_not_a_second_before(org):
    expires = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    IdempotencyRecord.objects.for_org(org).create(
        organization=org, caller="user:1", key="edge", fingerprint="f", expires_at=expires
    )
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert purge_expired() == 0
    with time_machine.travel(expires, tick=False):
        assert purge_expired() == 1
    assert not IdempotencyRecord.objects.for_org(org).exists()


def test_purge_works_through_every_batch_and_counts_them_all(org):
    other = OrganizationFactory()
    past = timezone.now() - timedelta(minutes=1)
    for index in range(5):
        owner = org if index % 2 else other
        IdempotencyRecord.objects.for_org(owner).create(
            organization=owner, caller="user:1", key=f"old-{index}", fingerprint="f", expires_at=past
        )
    IdempotencyRecord.objects.for_org(org).create(
        organization=org, caller="user:1", key="live", fingerprint="f", expires_at=timezone.now() + KEY_TTL
    )
    assert purge_expired(batch_size=2) == 5
    assert list(IdempotencyRecord.unscoped_objects.values_list("key", flat=True)) == ["live"]


def test_a_stored_answer_is_kept_below_500_and_released_from_500(org):
    def claimed(key):
        return claim(organization=org, caller="user:1", key=key, fingerprint="f")

    kept = claimed("four-nine-nine")
    kept.store(Response({"ok": False}, status=499))
    record = IdempotencyRecord.objects.for_org(org).get(key="four-nine-nine")
    assert record.status_code == 499 and record.completed_at is not None
    kept.release()  # a completed answer is never released
    assert IdempotencyRecord.objects.for_org(org).filter(key="four-nine-nine").exists()

    failed = claimed("five-hundred")
    failed.store(Response({"detail": "boom"}, status=500))
    assert not IdempotencyRecord.objects.for_org(org).filter(key="five-hundred").exists()


def test_fingerprint_is_length_prefixed_sha256_of_method_path_and_body():
    """A plain re-statement: each part prefixed by its length as 8 big-endian bytes, method upper-cased."""
    expected = hashlib.sha256()
    for part in (b"POST", b"/api/v1/invitations/", b'{"a":1}'):
        expected.update(len(part).to_bytes(8, "big") + part)
    assert request_fingerprint("post", "/api/v1/invitations/", b'{"a":1}') == expected.hexdigest()
    # Moving a byte from the path into the body changes the fingerprint.
    assert request_fingerprint("POST", "/a", b"b") != request_fingerprint("POST", "/", b"ab")


def test_a_plain_django_response_is_stored_without_a_body(org):
    stored = claim(organization=org, caller="user:1", key="plain", fingerprint="f")
    stored.store(HttpResponse(status=204))
    record = IdempotencyRecord.objects.for_org(org).get(key="plain")
    assert (record.status_code, record.response_body) == (204, None)
