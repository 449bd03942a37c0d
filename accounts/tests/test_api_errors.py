"""API plumbing: authentication failures, MFA, body limits, malformed input, CSRF, throttling, docs."""

import json
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_revoke
from accounts.roles import Role
from accounts.tests.api_support import api_client_for, key_client, make_api_key
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.api.views import OrganizationAPIView

pytestmark = pytest.mark.django_db

ORG_URL = "/api/v1/organization/"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "request_id" in body["error"]


@pytest.fixture
def org():
    return OrganizationFactory()


def test_api_key_reads_its_organisation(org):
    key, plaintext = make_api_key(org, Role.VIEWER)
    response = key_client(plaintext).get(ORG_URL)
    assert response.status_code == 200
    assert response.json()["slug"] == org.slug
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer clp_unknownpfx_secretsecret",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_missing_unknown_or_malformed_key_is_401(header):
    client = Client()
    response = client.get(ORG_URL, **({"HTTP_AUTHORIZATION": header} if header else {}))
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


def test_wrong_secret_for_known_prefix_is_401(org):
    key, _plaintext = make_api_key(org)
    response = key_client(f"clp_{key.prefix}_wrongsecret").get(ORG_URL)
    assert_error(response, 401, "authentication_failed")


def test_revoked_and_expired_keys_are_401(org):
    key, plaintext = make_api_key(org)
    api_key_revoke(organization=org, api_key_id=key.pk, actor=key.created_by)
    assert_error(key_client(plaintext).get(ORG_URL), 401, "authentication_failed")

    expiring, plaintext2 = make_api_key(org, expires_at=timezone.now() + timedelta(hours=1))
    type(expiring).unscoped_objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(key_client(plaintext2).get(ORG_URL), 401, "authentication_failed")


def test_session_without_verified_otp_is_403_mfa_required(org):
    user = MembershipFactory(organization=org).user
    client = Client()
    client.force_login(user)
    response = client.get(ORG_URL, HTTP_X_ORGANIZATION=org.slug)
    assert_error(response, 403, "mfa_required")


def test_verified_session_uses_x_organization(org):
    user = MembershipFactory(organization=org, role=Role.VIEWER).user
    client = verified_client(Client(), user)
    response = client.get(ORG_URL, HTTP_X_ORGANIZATION=org.slug)
    assert response.status_code == 200
    assert response.json()["id"] == str(org.pk)


def test_verified_session_for_an_org_it_does_not_belong_to_is_refused(org):
    user = MembershipFactory(role=Role.OWNER).user
    client = verified_client(Client(), user)
    response = client.get(ORG_URL, HTTP_X_ORGANIZATION=org.slug)
    assert response.status_code == 403


def test_csrf_failure_on_session_post_is_json_403(org):
    user = MembershipFactory(organization=org, role=Role.OWNER).user
    client = verified_client(Client(enforce_csrf_checks=True), user)
    response = client.post(
        "/api/v1/invitations/",
        {"email": "a@example.com", "role": "viewer"},
        content_type="application/json",
        HTTP_X_ORGANIZATION=org.slug,
    )
    assert_error(response, 403, "csrf_failed")


def test_oversized_body_is_413(org, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = api_client_for(org)
    body = json.dumps({"email": "a@example.com", "role": "viewer", "padding": "x" * 2048})
    response = client.post("/api/v1/invitations/", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    response = client.post(
        "/api/v1/invitations/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="big-one"
    )
    assert_error(response, 413, "request_too_large")


def test_malformed_content_length_is_400_not_500(org):
    client = api_client_for(org)
    for bogus in ("abc", "-5"):
        response = client.post("/api/v1/invitations/", "{}", content_type="application/json", CONTENT_LENGTH=bogus)
        assert_error(response, 400, "bad_request")


def test_malformed_json_is_400(org):
    client = api_client_for(org)
    response = client.post("/api/v1/invitations/", '{"email": ', content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_deeply_nested_json_is_400_not_recursion_error(org):
    client = api_client_for(org)
    for body in ("[" * 5000 + "]" * 5000, '{"a":' * 40 + "1" + "}" * 40):
        response = client.post("/api/v1/invitations/", body, content_type="application/json")
        assert_error(response, 400, "malformed_request")
        assert "nests deeper than" in response.json()["error"]["message"]
    # Shallow JSON still reaches the serializer.
    response = client.post("/api/v1/invitations/", {"email": [[["x"]]]}, content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_an_endpoint_that_ignores_its_body_still_refuses_a_malformed_one(org):
    client = api_client_for(org)
    created = client.post("/api/v1/invitations/", {"email": "new@example.com", "role": "viewer"},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    resend = f"/api/v1/invitations/{created.json()['id']}/resend/"
    response = client.post(resend, "[" * 5000, content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert client.post(resend).status_code == 200  # without a body it works


def test_nul_in_a_query_parameter_is_a_clear_400(org):
    client = api_client_for(org)
    response = client.get("/api/v1/audit-events/?action=ab%00cd")
    assert_error(response, 400, "invalid_parameter")
    assert set(response.json()["error"]["fields"]) == {"action"}
    assert client.get("/api/v1/audit-events/?action=abcd").status_code == 200


def test_validation_errors_name_the_fields(org):
    client = api_client_for(org)
    response = client.post("/api/v1/invitations/", {"email": "nope", "role": "emperor"}, format="json")
    assert_error(response, 400, "validation_error")
    assert set(response.json()["error"]["fields"]) == {"email", "role"}


def test_throttling_is_429_with_retry_after(org):
    from core.api.throttling import ApiKeyRateThrottle

    cache.clear()
    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {"api_key": "3/min"}
    try:
        client = api_client_for(org)
        statuses = [client.get(ORG_URL).status_code for _ in range(4)]
        assert statuses[:3] == [200, 200, 200]
        response = client.get(ORG_URL)
        assert_error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original
        cache.clear()


def test_subclass_cannot_override_get_queryset():
    with pytest.raises(TypeError, match="scoped_queryset"):

        class Sneaky(OrganizationAPIView):
            def get_queryset(self):
                return None


def test_schema_generates_and_documents_team_endpoints():
    client = Client()
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/api/v1/organization/", "/api/v1/members/{id}/", "/api/v1/invitations/", "/api/v1/api-keys/{id}/"):
        assert path in text
    assert "/api/v1/audit-events/" in text
    assert "Idempotency-Key" in text


def test_api_docs_page_uses_only_external_scripts():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert "src=" in attributes and not body.strip(), "inline script would be blocked by the CSP"
    assert "unsafe-inline" not in response.get("Content-Security-Policy", "")
    assert re.search(r"script-src[^;]*'self'", response["Content-Security-Policy"])
    for attributes, _ in scripts:
        src = re.search(r'src="([^"]+)"', attributes).group(1)
        asset = Client().get(src)
        assert asset.status_code == 200, src


def test_session_user_without_org_gets_clear_403():
    user = UserFactory()
    client = verified_client(Client(), user)
    response = client.get(ORG_URL)
    assert response.status_code == 403
    assert "X-Organization" in response.json()["error"]["message"]
