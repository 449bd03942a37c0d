"""Typed errors for everything Microsoft can answer.

Callers branch on the class, never on status codes or message text: the mapping from
Partner Center error codes (reference §2.12), Graph error messages (§3.3) and Entra
token errors (§1.2) lives here and only here.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any


class MicrosoftError(Exception):
    """Base class. ``code`` is the Microsoft error code as a string ("800090", "Request_BadRequest")."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        request_id: str = "",
        correlation_id: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        status = f"HTTP {self.status}" if self.status else "no response"
        return f"{status}{code}: {self.message} (MS-RequestId {self.request_id or '-'})"


class InvalidRequest(MicrosoftError):
    """Microsoft rejected the input; repeating the same request will fail the same way."""


class NotFound(MicrosoftError):
    pass


class Conflict(MicrosoftError):
    """The resource is busy or already in the requested state (pending operation, duplicate, submitted cart)."""


class AuthenticationFailed(MicrosoftError):
    """No usable token: bad credentials, app not consented in the tenant, token rejected."""


class Forbidden(MicrosoftError):
    """The token is valid but lacks the role or relationship (GDAP, app permission) for this call."""


class MfaClaimMissing(AuthenticationFailed):
    """App+User call whose token lacks the ``mfa`` amr claim (Partner Center MFA enforcement)."""


class CustomerAgreementMissing(Forbidden):
    """The customer has not accepted the Microsoft Customer Agreement (PC 13605)."""


class NotEnoughLicenses(InvalidRequest):
    """No free seats in the subscription for this SKU."""


class SkuNotInTenant(InvalidRequest):
    """The SKU is not a subscribed SKU of the customer's tenant."""


class UsageLocationMissing(InvalidRequest):
    """The directory user has no usageLocation; Microsoft refuses direct licence assignment."""


class ObjectConflict(InvalidRequest):
    """Another directory object already has this unique value (Graph ``details[].code`` ObjectConflict):
    a user principal name or mail alias in use. ``target`` names the property when Graph says which."""

    target = ""


class PasswordRejected(InvalidRequest):
    """The tenant's password policy refused the password (length, character classes, banned words)."""


class SeatDecreaseNotAllowed(InvalidRequest):
    """The seats being removed were added more than 7 days ago (NCE per-batch window)."""


class CancellationWindowClosed(InvalidRequest):
    """The 168-hour NCE cancellation window after purchase or renewal has passed."""


class LimitExceeded(InvalidRequest):
    """A Partner Center quota: subscriptions per customer, seats per subscription, sandbox limits."""


class Throttled(MicrosoftError):
    """Still 429 after the retry budget (or Retry-After longer than we are willing to wait in-process)."""

    retryable = True


class TransientFailure(MicrosoftError):
    """Still 5xx, timing out or unreachable after the retry budget. Safe to retry later with the same request id."""

    retryable = True


class OutcomeUnknown(TransientFailure):
    """No answer to a request that is not safe to send twice (a Graph POST on a connection that was
    reset or timed out): Microsoft may or may not have carried it out. It was not sent again; look
    at the resource before trying again."""


# Partner Center numeric codes -> class (reference §2.12).
PC_CODES: dict[str, type[MicrosoftError]] = {
    **dict.fromkeys(["800090", "900214", "900257"], SeatDecreaseNotAllowed),
    **dict.fromkeys(["900213", "900117"], CancellationWindowClosed),
    "13605": CustomerAgreementMissing,
    "60012": NotEnoughLicenses,
    **dict.fromkeys(["800066", "800067", "800018", "10009", "10015", "900311"], LimitExceeded),
    **dict.fromkeys(["1000", "20003", "60003", "400013", "400018", "400019"], NotFound),
    **dict.fromkeys(["600024", "600061", "800014", "800060", "800064", "800065", "800082", "900278", "2055"], Conflict),
    **dict.fromkeys(["800001"], AuthenticationFailed),
    **dict.fromkeys(["900308", "900309", "900316", "900329", "20002"], Forbidden),
}

# Graph reports licence problems as 400 Request_BadRequest; only the message tells them apart (§3.3).
GRAPH_MESSAGES: list[tuple[str, type[MicrosoftError]]] = [
    ("invalid usage location", UsageLocationMissing),
    ("does not have any available licenses", NotEnoughLicenses),
    ("does not correspond to a valid company license", SkuNotInTenant),
    ("another object with the same value for property", ObjectConflict),
    ("does not comply with password complexity", PasswordRejected),
]

# Entra token endpoint codes (AADSTS...) that mean something more precise than "authentication failed".
ENTRA_CODES: dict[int, type[MicrosoftError]] = {50076: MfaClaimMissing, 50079: MfaClaimMissing}


def _by_status(status: int) -> type[MicrosoftError]:
    if status == 401:
        return AuthenticationFailed
    if status == 403:
        return Forbidden
    if status == 404:
        return NotFound
    if status in (409, 412):
        return Conflict
    if status == 429:
        return Throttled
    if status >= 500:
        return TransientFailure
    return InvalidRequest


def _is_mfa_challenge(status: int, headers: dict, message: str) -> bool:
    if status != 401:
        return False
    text = f"{headers.get('WWW-Authenticate', '')} {message}".lower()
    return "mfa" in text or "multi-factor" in text


def error_from_response(
    *, status: int, body: Any, headers: dict, request_id: str, correlation_id: str, reason: str = ""
) -> MicrosoftError:
    """Build the typed error for a non-success Partner Center or Graph response."""
    code, message, target = "", "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # Graph
        code = str(body["error"].get("code", ""))
        message = str(body["error"].get("message", ""))
        cls = next((c for text, c in GRAPH_MESSAGES if text in message.lower()), None)
        details = body["error"].get("details")
        conflict = next((d for d in details if isinstance(d, dict) and d.get("code") == "ObjectConflict"), None) \
            if isinstance(details, list) else None
        if conflict is not None:
            cls, target = ObjectConflict, str(conflict.get("target") or "")
    elif isinstance(body, dict):  # Partner Center (both observed shapes, §2.1)
        code = str(body.get("code", "") or "")
        message = str(body.get("description") or body.get("message") or "")
        cls = PC_CODES.get(code)
    else:
        cls = None
    message = message or reason or f"HTTP {status}"
    if _is_mfa_challenge(status, headers, message):
        cls = MfaClaimMissing
    if cls is None or status == 429 or status >= 500:
        cls = _by_status(status)
    error = cls(
        message,
        status=status,
        code=code,
        request_id=request_id,
        correlation_id=correlation_id,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )
    if target:
        error.target = target
    return error


def error_from_token_result(result: dict, *, tenant_id: str) -> MicrosoftError:
    """msal returns token errors as dicts; turn one into a typed error without echoing secrets."""
    codes = result.get("error_codes") or []
    cls = next((ENTRA_CODES[c] for c in codes if c in ENTRA_CODES), AuthenticationFailed)
    description = str(result.get("error_description", "")).split(" Trace ID:")[0]
    return cls(
        f"Token for tenant {tenant_id} refused: {result.get('error', 'unknown_error')}: {description}",
        code=str(codes[0]) if codes else str(result.get("error", "")),
        correlation_id=str(result.get("correlation_id", "")),
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
