"""Privacy API: the organisation's opt-out of sale and sharing (thin; writes go through services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import ApiKey
from accounts.roles import Perm
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.views import OrganizationAPIView
from core.audit import Actor
from privacy.models import OptOut, OptOutMethod
from privacy.selectors import organization_opt_out
from privacy.services.optouts import opt_out_organization_record, opt_out_user_record


class OptOutSerializer(serializers.Serializer):
    opted_out = serializers.BooleanField()
    since = serializers.DateTimeField(allow_null=True)
    method = serializers.CharField(allow_blank=True)


def _present(record: OptOut | None) -> dict:
    if record is None:
        return {"opted_out": False, "since": None, "method": ""}
    return {"opted_out": True, "since": record.recorded_at, "method": record.method}


class OptOutView(OrganizationAPIView):
    """GET: whether the organisation opted out of sale and sharing. POST: opt it out (idempotent)."""

    model = OptOut
    serializer_class = OptOutSerializer
    # Opting out is every member's right, whatever their role.
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.VIEW}

    @extend_schema(summary="The organisation's opt-out of sale and sharing", responses={200: OptOutSerializer})
    def get(self, request):
        return Response(OptOutSerializer(_present(organization_opt_out(self.organization))).data)

    @extend_schema(
        summary="Opt the organisation out of sale and sharing",
        description="Recorded once and kept; a repeated call returns the first record. With a signed-in session "
        "the caller's own account is opted out too.",
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: OptOutSerializer, **error_responses(403)},
    )
    def post(self, request):
        actor = self.actor
        if isinstance(actor, ApiKey):
            record = opt_out_organization_record(
                organization=self.organization, method=OptOutMethod.API, actor=Actor.api_key(actor)
            )
        else:
            opt_out_user_record(user=actor, method=OptOutMethod.API, actor=Actor.user(actor))
            record = organization_opt_out(self.organization)
        return Response(OptOutSerializer(_present(record)).data)
