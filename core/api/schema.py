"""OpenAPI pieces shared by every app's API: the error shape and the Idempotency-Key header."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .idempotency import HEADER, KEY_TTL, MAX_KEY_LENGTH


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. validation_error, not_found.")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Field name to its error messages."
    )
    request_id = serializers.CharField(help_text="Quote this when contacting support.")
    assigned = serializers.IntegerField(required=False, help_text="seats_assigned only: licenses held now.")
    requested = serializers.IntegerField(required=False, help_text="seats_assigned only: seats the change leaves.")
    short = serializers.IntegerField(required=False, help_text="seats_assigned only: licenses to unassign first.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        f"Up to {MAX_KEY_LENGTH} printable ASCII characters, unique per request. A retry with the same key and "
        "body replays the first response (header Idempotent-Replayed: true); the same key with a different body "
        "gives 422 idempotency_key_reused; a retry while the first is running gives 409 "
        f"idempotency_request_in_progress. Keys are kept for {int(KEY_TTL.total_seconds() // 3600)} hours."
    ),
)

_ERROR_DESCRIPTIONS = {
    400: "Invalid input (validation_error, malformed_request, invalid_idempotency_key).",
    401: "Missing, unknown, revoked or expired API key.",
    403: "The role does not allow this, or a second-factor check is required.",
    404: "No such object in this organisation.",
    409: "Conflicts with the current state (e.g. seats_assigned: more licenses assigned than the change leaves, "
         "with assigned, requested and short), or the same Idempotency-Key is still in flight.",
    410: "Gone: shown once already, or expired (a temporary password).",
    413: "The request body is too large.",
    422: "The Idempotency-Key was already used for a different request.",
    429: "Too many requests; see Retry-After.",
}


def error_responses(*statuses: int) -> dict:
    return {status: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[status]) for status in statuses}
