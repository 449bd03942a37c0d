"""Team API: the organisation, members, invitations, API keys and the activity log.

Thin: serializers parse and present; every write goes through a service. API keys
cannot be created here (the dashboard does it, behind a recent second-factor check).
"""

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Perm, Role
from core.api.errors import ApiError
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.serializers import ModelSerializer
from core.api.views import OrganizationAPIView, OrganizationViewSet
from core.models import AuditEvent

from . import schema  # noqa: F401  (registers the OpenAPI security schemes)
from .api_keys import api_key_revoke
from .invitations import invitation_create, invitation_resend, invitation_revoke
from .models import ApiKey, Invitation, Membership, Organization
from .reauth import has_recent_mfa
from .selectors import members_of_organization
from .team import TeamError, membership_change_role, membership_remove

_TEAM_ERROR_STATUS = {"last_owner": 409, "role_exceeds_own": 403}


def _team_error(exc: TeamError) -> ApiError:
    return ApiError(exc.message, code=exc.code, status_code=_TEAM_ERROR_STATUS.get(exc.code, 400))


def _require_recent_mfa_to_grant(request, role: str) -> None:
    """Granting the owner role needs a second-factor check minutes ago, which only a dashboard session can have."""
    if role != Role.OWNER:
        return
    if isinstance(request.auth, ApiKey) or not has_recent_mfa(request._request):
        raise ApiError(
            "Granting the owner role needs a recent second-factor check. Do it from the dashboard.",
            code="recent_mfa_required",
            status_code=403,
        )


# --- serializers -------------------------------------------------------------
class OrganizationSerializer(ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "legal_name", "business_name", "country", "time_zone", "status", "created_at"]
        read_only_fields = fields


class MemberUserSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class MemberSerializer(ModelSerializer):
    user = MemberUserSerializer(read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "joined_at"]
        read_only_fields = fields


class RoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = fields


class InvitationInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "status", "expires_at", "last_used_at", "revoked_at", "created_at"]
        read_only_fields = fields

    def get_status(self, key: ApiKey) -> str:
        if key.revoked_at is not None:
            return "revoked"
        return "active" if key.is_usable() else "expired"


class AuditEventSerializer(ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "occurred_at",
            "actor_type",
            "actor_id",
            "action",
            "target_type",
            "target_id",
            "metadata",
        ]
        read_only_fields = fields


# --- views -------------------------------------------------------------------
class OrganizationView(OrganizationAPIView):
    serializer_class = OrganizationSerializer

    @extend_schema(summary="The organisation the caller acts for", responses={200: OrganizationSerializer})
    def get(self, request):
        return Response(OrganizationSerializer(self.organization).data)


@extend_schema_view(
    list=extend_schema(summary="List members", responses={200: MemberSerializer(many=True), **error_responses(403)}),
    retrieve=extend_schema(summary="A member", responses={200: MemberSerializer, **error_responses(404)}),
)
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = Membership
    serializer_class = MemberSerializer
    required_permissions = {"partial_update": Perm.TEAM_MANAGE, "destroy": Perm.TEAM_MANAGE}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def scoped_queryset(self):
        return members_of_organization(self.organization)

    @extend_schema(
        summary="Change a member's role",
        description="The last owner cannot be demoted. Granting the owner role needs a recent second-factor check.",
        request=RoleInputSerializer,
        responses={200: MemberSerializer, **error_responses(400, 403, 404, 409)},
    )
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        data = RoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = data.validated_data["role"]
        _require_recent_mfa_to_grant(request, role)
        try:
            membership = membership_change_role(
                organization=self.organization, membership_id=membership.pk, role=role, actor=self.actor
            )
        except TeamError as exc:
            raise _team_error(exc) from exc
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        summary="Remove a member",
        description="The last owner cannot be removed.",
        responses={204: None, **error_responses(403, 404, 409)},
    )
    def destroy(self, request, pk=None):
        membership = self.get_object()
        try:
            membership_remove(organization=self.organization, membership_id=membership.pk, actor=self.actor)
        except TeamError as exc:
            raise _team_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List invitations",
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=["pending", "accepted", "revoked", "expired"],
                description="Only invitations in this state.",
            )
        ],
        responses={200: InvitationSerializer(many=True), **error_responses(403)},
    ),
    retrieve=extend_schema(summary="An invitation", responses={200: InvitationSerializer, **error_responses(404)}),
)
class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = Invitation
    serializer_class = InvitationSerializer
    # Invitations hold invitees' email addresses: only team managers see them.
    required_permissions = {"GET": Perm.TEAM_MANAGE, "POST": Perm.TEAM_MANAGE, "DELETE": Perm.TEAM_MANAGE}

    def scoped_queryset(self):
        queryset = Invitation.objects.for_org(self.organization).select_related("invited_by").order_by("-created_at")
        wanted = self.request.query_params.get("status") if self.action == "list" else None
        if not wanted:
            return queryset
        now = timezone.now()
        open_ = Q(accepted_at=None, revoked_at=None)
        filters = {
            "pending": open_ & Q(expires_at__gt=now),
            "expired": open_ & Q(expires_at__lte=now),
            "accepted": Q(accepted_at__isnull=False),
            "revoked": Q(accepted_at=None, revoked_at__isnull=False),
        }
        if wanted not in filters:
            raise ApiError(
                "Unknown status.", code="validation_error", fields={"status": [f"Use one of {', '.join(filters)}."]}
            )
        return queryset.filter(filters[wanted])

    @extend_schema(
        summary="Invite someone by email",
        description="Sends a link valid for seven days. Inviting an owner needs a recent second-factor check.",
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=InvitationInputSerializer,
        responses={201: InvitationSerializer, **error_responses(400, 403, 409, 422)},
    )
    def create(self, request):
        data = InvitationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _require_recent_mfa_to_grant(request, data.validated_data["role"])
        invitation = invitation_create(
            organization=self.organization,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            actor=self.actor,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Send a new link",
        description="The previous link stops working and the seven days restart.",
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=None,
        responses={200: InvitationSerializer, **error_responses(400, 403, 404, 409, 422)},
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        invitation = self.get_object()
        _require_recent_mfa_to_grant(request, invitation.role)
        invitation = invitation_resend(organization=self.organization, invitation_id=invitation.pk, actor=self.actor)
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(summary="Withdraw an invitation", responses={204: None, **error_responses(400, 403, 404)})
    def destroy(self, request, pk=None):
        invitation = self.get_object()
        invitation_revoke(organization=self.organization, invitation_id=invitation.pk, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List API keys",
        description="Secrets are never returned. Keys are created in the dashboard only.",
        responses={200: ApiKeySerializer(many=True), **error_responses(403)},
    ),
    retrieve=extend_schema(summary="An API key", responses={200: ApiKeySerializer, **error_responses(404)}),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = ApiKey
    serializer_class = ApiKeySerializer
    required_permissions = {"GET": Perm.API_KEYS_MANAGE, "DELETE": Perm.API_KEYS_MANAGE}

    def scoped_queryset(self):
        return ApiKey.objects.for_org(self.organization).order_by("-created_at")

    @extend_schema(
        summary="Revoke an API key",
        description="Requests with the key fail from now on. A key may revoke itself.",
        responses={204: None, **error_responses(403, 404)},
    )
    def destroy(self, request, pk=None):
        key = self.get_object()
        api_key_revoke(organization=self.organization, api_key_id=key.pk, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="The organisation's activity log",
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, description="Only events with this action.")],
        responses={200: AuditEventSerializer(many=True), **error_responses(403)},
    )
)
class AuditEventViewSet(mixins.ListModelMixin, OrganizationViewSet):
    model = AuditEvent
    serializer_class = AuditEventSerializer
    required_permissions = {"GET": Perm.AUDIT_VIEW}

    def scoped_queryset(self):
        queryset = AuditEvent.objects.filter(organization=self.organization).order_by("-sequence")
        wanted = self.request.query_params.get("action")
        return queryset.filter(action=wanted) if wanted else queryset
