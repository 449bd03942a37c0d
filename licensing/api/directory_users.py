"""API: the directory user actions (create, reset password, block and unblock sign-in, offboard) and the
operations that carry them out, with the temporary password revealed once.

Every action answers 202 with the operation; poll ``/directory-user-operations/{id}/`` until it is
``succeeded`` or ``failed``. The temporary password of a create or reset is handed out once by
``POST /directory-user-operations/{id}/reveal-password/``, to the caller who asked for it: the same
API key, or the same person with a second-factor check in the last few minutes. That endpoint never
stores its answer for ``Idempotency-Key`` replays, so the password exists nowhere after it is shown.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.reauth import has_recent_mfa
from accounts.roles import Perm
from accounts.team import audit_actor
from core.api.errors import ApiError, error_body
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.serializers import ModelSerializer
from core.api.views import OrganizationViewSet
from licensing.models import ProvisioningOperation
from licensing.selectors import directory_actions as selectors_actions
from licensing.services.directory import DirectoryNotLinked
from licensing.services.directory import offboard as offboard_services
from licensing.services.directory import passwords as password_services
from licensing.services.directory import users as user_services

REFUSAL_STATUS = {
    "invalid": 400, "upn_taken": 409, "user_removed": 409, "in_progress": 409, "offboarding": 409,
    "not_requester": 403, "already_shown": 410, "not_available": 409,
}


def refusal(exc: Exception) -> ApiError:
    if isinstance(exc, user_services.DirectoryActionRefused):
        fields = {exc.field: [exc.message]} if exc.field else None
        return ApiError(exc.message, code=exc.code, status_code=REFUSAL_STATUS.get(exc.code, 400), fields=fields)
    if isinstance(exc, DirectoryNotLinked):
        return ApiError(str(exc), code="no_tenant", status_code=409)
    raise exc


class DirectoryOperationSerializer(ModelSerializer):
    action = serializers.SerializerMethodField()
    directory_user = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField()
    temporary_password_available = serializers.SerializerMethodField()

    class Meta:
        model = ProvisioningOperation
        fields = ["id", "kind", "action", "status", "directory_user", "created_at", "finished_at", "attempts",
                  "failure_reason", "ms_request_id", "timeline", "outcome", "temporary_password_available"]
        read_only_fields = fields

    def get_action(self, obj) -> str:
        return user_services.KIND_LABELS.get(obj.kind, obj.kind)

    def get_directory_user(self, obj) -> str | None:
        return obj.target_id if obj.target_type == "DirectoryUser" else None

    def get_timeline(self, obj) -> list[dict]:
        return [{"step": s["key"], "label": s["label"], "at": s["at"]} for s in selectors_actions.action_timeline(obj)]

    def get_outcome(self, obj) -> dict:
        return selectors_actions.action_outcome(obj)

    def get_temporary_password_available(self, obj) -> bool:
        return password_services.password_waiting(obj)


class CreateUserSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=256)
    user_name = serializers.CharField(max_length=64, help_text="The part of the user principal name before the @; "
                                                               "also the mail alias.")
    domain = serializers.CharField(max_length=253, help_text="One of the tenant's verified domains.")
    usage_location = serializers.CharField(max_length=2, required=False, allow_blank=True, default="",
                                           help_text="Two-letter country code; licenses need it.")
    job_title = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    force_change_password = serializers.BooleanField(default=True)


class ResetPasswordSerializer(serializers.Serializer):
    force_change_password = serializers.BooleanField(default=True)


class OffboardSerializer(serializers.Serializer):
    mailbox = serializers.ChoiceField(choices=offboard_services.Mailbox.choices)


class RevealedPasswordSerializer(serializers.Serializer):
    temporary_password = serializers.CharField()


def _accepted(operation) -> Response:
    return Response(DirectoryOperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


ACCEPTED = {202: DirectoryOperationSerializer, **error_responses(400, 409)}


class DirectoryUserActionsMixin:
    """Writes of ``/directory-users/``, mixed into its viewset (LICENSES_MANAGE, like assignments)."""

    @extend_schema(summary="Create a user in the Microsoft tenant (queued; temporary password revealed once)",
                   request=CreateUserSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER], responses=ACCEPTED)
    def create(self, request):
        payload = CreateUserSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            operation = user_services.directory_user_create(
                organization=self.organization, actor=audit_actor(self.actor), **payload.validated_data
            )
        except (user_services.DirectoryActionRefused, DirectoryNotLinked) as exc:
            raise refusal(exc) from None
        return _accepted(operation)

    @extend_schema(summary="Reset the user's password (queued; temporary password revealed once)",
                   request=ResetPasswordSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER], responses=ACCEPTED)
    @action(detail=True, methods=["post"], url_path="reset-password")
    def reset_password(self, request, pk=None):
        payload = ResetPasswordSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._act(user_services.directory_user_password_reset,
                         force_change_password=payload.validated_data["force_change_password"])

    @extend_schema(summary="Block sign-in and sign the user out of every session (queued)", request=None,
                   parameters=[IDEMPOTENCY_KEY_PARAMETER], responses=ACCEPTED)
    @action(detail=True, methods=["post"], url_path="block-sign-in")
    def block_sign_in(self, request, pk=None):
        return self._act(user_services.directory_user_block)

    @extend_schema(summary="Allow the user to sign in again (queued)", request=None,
                   parameters=[IDEMPOTENCY_KEY_PARAMETER], responses=ACCEPTED)
    @action(detail=True, methods=["post"], url_path="unblock-sign-in")
    def unblock_sign_in(self, request, pk=None):
        return self._act(user_services.directory_user_unblock)

    @extend_schema(summary="Offboard: block sign-in, sign out, remove licenses, with an explicit mailbox choice",
                   request=OffboardSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER], responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def offboard(self, request, pk=None):
        payload = OffboardSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._act(offboard_services.directory_user_offboard, mailbox=payload.validated_data["mailbox"])

    def _act(self, service, **kwargs) -> Response:
        user = self.get_object()
        try:
            operation = service(organization=self.organization, user=user, actor=audit_actor(self.actor), **kwargs)
        except (user_services.DirectoryActionRefused, DirectoryNotLinked) as exc:
            raise refusal(exc) from None
        return _accepted(operation)


@extend_schema_view(
    list=extend_schema(summary="Directory user actions (create, password reset, block, unblock, offboard), newest "
                               "first"),
    retrieve=extend_schema(summary="One directory user action: status, timeline, outcome (poll it)"),
)
class DirectoryUserOperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = ProvisioningOperation
    serializer_class = DirectoryOperationSerializer
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.LICENSES_MANAGE}
    # The reveal's answer is the password: it must not be kept for Idempotency-Key replays.
    idempotent_methods = frozenset()

    def scoped_queryset(self):
        return selectors_actions.user_action_operations(self.organization)

    @extend_schema(summary="Reveal the temporary password once (then it is erased)", request=None,
                   responses={200: RevealedPasswordSerializer, **error_responses(403, 409, 410)})
    @action(detail=True, methods=["post"], url_path="reveal-password")
    def reveal_password(self, request, pk=None):
        operation = self.get_object()
        if not hasattr(self.actor, "prefix") and not has_recent_mfa(request._request):
            raise ApiError("Verify your second factor again (in the dashboard) within the last few minutes, then "
                           "retry.", code="mfa_required", status_code=403)
        try:
            password = password_services.temporary_password_reveal(
                organization=self.organization, operation=operation, actor=audit_actor(self.actor)
            )
        except user_services.DirectoryActionRefused as exc:
            raise refusal(exc) from None
        if password is None:
            # Answered, not raised: raising would roll back the erasure the service just made.
            return Response(error_body("expired", "The temporary password expired before anyone saw it. Reset the "
                                                  "password again."), status=status.HTTP_410_GONE)
        response = Response({"temporary_password": password})
        response["Cache-Control"] = "no-store"
        return response
