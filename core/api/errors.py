"""One JSON error shape for every API failure: code, message, field errors, request id."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.requestid import get_request_id

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """A domain error with a stable code, raised by API views or mapped from services."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, fields=None,
                 extra: dict | None = None):
        super().__init__(detail=message, code=code or self.default_code)
        if status_code:
            self.status_code = status_code
        self.error_code = code or self.default_code
        self.fields = fields or {}
        # Numbers a client acts on (e.g. seats assigned, requested, short), beside code and message.
        self.extra = extra or {}


def request_too_large() -> ApiError:
    limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
    return ApiError(
        f"The request body is larger than the {limit_mb:.1f} MB limit.", code="request_too_large", status_code=413
    )


def error_body(code: str, message: str, fields: dict | None = None, extra: dict | None = None) -> dict:
    reserved = {"code", "message", "fields", "request_id"}
    details = {k: v for k, v in (extra or {}).items() if k not in reserved}
    return {"error": {"code": code, "message": message, "fields": fields or {}, "request_id": get_request_id(),
                      **details}}


def error_response(status_code: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status_code)


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    return {"non_field_errors": [str(item) for item in (detail if isinstance(detail, list) else [detail])]}


_CODES = {
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    exceptions.AuthenticationFailed: ("authentication_failed", None),
    exceptions.PermissionDenied: ("permission_denied", None),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
    exceptions.Throttled: ("throttled", None),
    exceptions.ParseError: ("malformed_request", None),
}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        # Django raises it from request.body/POST; left alone it would become a generic 400.
        exc = request_too_large()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)

    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, str(exc.detail), exc.fields, exc.extra)
        return Response(body, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", "Some fields are invalid.", _flatten(exc.detail))
        return Response(body, status=400)
    if isinstance(exc, exceptions.APIException):
        code, message = _CODES.get(type(exc), (getattr(exc, "default_code", "error"), None))
        body = error_body(code, message or str(exc.detail))
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        return Response(body, status=exc.status_code, headers=headers)
    return None
