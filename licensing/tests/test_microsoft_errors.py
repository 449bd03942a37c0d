"""Error mapping and header parsing: pure functions, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from licensing.microsoft import errors
from licensing.microsoft.http import loggable_path


def pc(status, code, description="x", headers=None):
    return errors.error_from_response(status=status, body={"code": code, "description": description},
                                      headers=headers or {}, request_id="r", correlation_id="c")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 800090, errors.SeatDecreaseNotAllowed),
        (400, "900214", errors.SeatDecreaseNotAllowed),
        (400, 900213, errors.CancellationWindowClosed),
        (403, 13605, errors.CustomerAgreementMissing),
        (404, 20003, errors.NotFound),
        (409, 800060, errors.Conflict),
        (403, 800067, errors.LimitExceeded),
        (400, 2002, errors.InvalidRequest),
        (429, 429, errors.Throttled),
        (503, 503, errors.TransientFailure),
    ],
)
def test_partner_center_codes_map_to_typed_errors(status, code, expected):
    error = pc(status, code)
    assert type(error) is expected
    assert error.status == status and error.code == str(code) and error.request_id == "r"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("License assignment cannot be done for user with invalid usage location.", errors.UsageLocationMissing),
        ("Subscription with SKU abc does not have any available licenses.", errors.NotEnoughLicenses),
        ("License abc does not correspond to a valid company License.", errors.SkuNotInTenant),
        ("Cannot convert a primitive value to the expected type 'Edm.Guid'.", errors.InvalidRequest),
        ("Another object with the same value for property proxyAddresses already exists.", errors.ObjectConflict),
        ("The specified password does not comply with password complexity requirements. Please provide a "
         "different password.", errors.PasswordRejected),
    ],
)
def test_graph_licence_messages_map_to_typed_errors(message, expected):
    body = {"error": {"code": "Request_BadRequest", "message": message}}
    error = errors.error_from_response(status=400, body=body, headers={}, request_id="r", correlation_id="c")
    assert type(error) is expected


def test_object_conflict_details_name_the_property():
    """Graph's documented shape for a user principal name in use (user-post-users)."""
    message = "Another object with the same value for property userPrincipalName already exists."
    body = {"error": {"code": "Request_BadRequest", "message": message,
                      "details": [{"code": "ObjectConflict", "message": message, "target": "userPrincipalName"}]}}
    error = errors.error_from_response(status=400, body=body, headers={}, request_id="r", correlation_id="c")
    assert type(error) is errors.ObjectConflict and error.target == "userPrincipalName" and not error.retryable
    # The details decide even when the message is worded differently.
    body["error"]["message"] = "A conflicting object with one or more of the specified property values is present."
    error = errors.error_from_response(status=400, body=body, headers={}, request_id="r", correlation_id="c")
    assert type(error) is errors.ObjectConflict


def test_mfa_challenge_is_recognised():
    error = pc(401, 900300, "MFA required", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    assert isinstance(error, errors.MfaClaimMissing)


def test_retry_after_accepts_seconds_and_http_dates():
    assert errors.parse_retry_after("57") == 57
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert errors.parse_retry_after(date, now=now.timestamp()) == pytest.approx(30)
    assert errors.parse_retry_after("garbage") is None
    assert errors.parse_retry_after(None) is None


def test_token_errors_never_echo_the_trace_text():
    result = {"error": "invalid_client", "error_codes": [7000215],
              "error_description": "AADSTS7000215: Invalid client secret provided. Trace ID: abc Correlation ID: d"}
    error = errors.error_from_token_result(result, tenant_id="t")
    assert isinstance(error, errors.AuthenticationFailed) and error.code == "7000215"
    assert "Trace ID" not in error.message


def test_logged_paths_mask_upns_and_domains_and_drop_queries():
    assert loggable_path("https://h/graph/v1.0/users/jane%40contoso.com/assignLicense?$filter=x") == (
        "/graph/v1.0/users/{upn}/assignLicense"
    )
    assert loggable_path("https://h/partnercenter/v1/domains/contoso.onmicrosoft.com") == (
        "/partnercenter/v1/domains/{domain}"
    )
