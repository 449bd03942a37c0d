"""Response helpers and error shapes of the three Microsoft APIs."""

import json
import uuid
from datetime import UTC, datetime

from werkzeug.wrappers import Response


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def empty_response(status: int = 204, headers: dict | None = None) -> Response:
    return Response(b"", status=status, headers=headers or {})


class ApiError(Exception):
    """Raised by handlers; carries the complete Microsoft-shaped error response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def pc_error(status: int, code: int, description: str, *, error_name: str | None = None,
             data: list | None = None, headers: dict | None = None) -> ApiError:
    """Partner Center error: the superset of the two observed shapes (reference §2.1)."""
    body = {"code": code, "description": description, "message": description,
            "data": data or [], "source": "PartnerFD", "isRetryable": status >= 500,
            "parameters": {}, "errorMessageExtended": f"InternalErrorCode={code}"}
    if error_name:
        body["errorName"] = error_name
    return ApiError(json_response(body, status, headers))


def graph_error(status: int, code: str, message: str, *, headers: dict | None = None,
                details: list[dict] | None = None) -> ApiError:
    """Graph's error shape; ``details`` as Graph sends them, e.g. ``[{"code": "ObjectConflict",
    "target": "userPrincipalName"}]`` for a user principal name already in use."""
    request_id = str(uuid.uuid4())
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    error["innerError"] = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                           "request-id": request_id, "client-request-id": request_id}
    body = {"error": error}
    return ApiError(json_response(body, status, {"request-id": request_id, **(headers or {})}))


def entra_error(status: int, error: str, code: int, description: str) -> ApiError:
    """Entra ID v2.0 token endpoint error (reference §1.2 item 7)."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} "
                             f"Correlation ID: {correlation_id} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}",
        "error_codes": [code],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return ApiError(json_response(body, status, {"Cache-Control": "no-store, no-cache"}))


def read_json(request) -> dict:
    """Parse a JSON request body; PC accepts property names case-insensitively, so callers use
    `field()` to read them."""
    if not request.data:
        return {}
    try:
        value = json.loads(request.data)
    except ValueError:
        raise pc_error(400, 800002, "Invalid request input: body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise pc_error(400, 800002, "Invalid request input: expected a JSON object.")
    return value


def field(obj: dict, name: str, default=None):
    """Case-insensitive property lookup (PC docs mix `CompanyProfile` and `companyProfile`)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if key.lower() == lowered:
            return value
    return default
