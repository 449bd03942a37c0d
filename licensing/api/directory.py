"""API: directory users and sync, license assignments (single and bulk with dry run), bulk jobs, usage, renewals.

Thin: serializers parse and present, services decide. Assignments reach Microsoft
asynchronously: a created assignment is ``pending`` until Graph confirms. POSTs honour
``Idempotency-Key``.
"""

from __future__ import annotations

import csv
import io
import uuid

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Perm
from accounts.team import audit_actor
from core.api.errors import ApiError
from core.api.pagination import StandardPagination
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.serializers import ModelSerializer
from core.api.views import OrganizationViewSet
from licensing.models import BulkJob, BulkJobRow, DirectorySync, DirectoryUser, LicenseAssignment, TenantSku
from licensing.selectors import directory as selectors_directory
from licensing.selectors import directory_search
from licensing.selectors import usage as selectors_usage
from licensing.services import assignments as assignment_services
from licensing.services import bulk as bulk_services
from licensing.services import directory as directory_services
from licensing.services import reassign as reassign_services

from .directory_users import DirectoryUserActionsMixin

MAX_BULK_USERS = 50_000


def _refusal(exc: Exception) -> ApiError:
    if isinstance(exc, assignment_services.SeatsExhausted):
        return ApiError(str(exc), code="seats_exhausted", status_code=409,
                        fields={"seats": [f"needed={exc.needed}", f"available={exc.available}", f"short={exc.short}"]})
    if isinstance(exc, assignment_services.AssignmentRefused):
        return ApiError(f"{exc.message} {exc.fix_hint}".strip(), code=exc.code, status_code=400)
    if isinstance(exc, directory_services.DirectoryNotLinked):
        return ApiError(str(exc), code="no_tenant", status_code=409)
    if isinstance(exc, bulk_services.BulkInputError):
        return ApiError(str(exc), code="invalid_input", status_code=400)
    if isinstance(exc, ValidationError):
        return ApiError(" ".join(exc.messages), code="invalid", status_code=400)
    raise exc


# --- directory -------------------------------------------------------------------------------------------------
class DirectoryUserSerializer(ModelSerializer):
    licenses = serializers.SerializerMethodField()

    class Meta:
        model = DirectoryUser
        fields = ["id", "graph_id", "display_name", "user_principal_name", "mail", "job_title", "usage_location",
                  "account_enabled", "last_sign_in_at", "removed_at", "licenses"]

    def get_licenses(self, obj) -> list[dict]:
        return [{"assignment_id": str(a.assignment_id), "sku_id": str(a.sku_id), "sku": a.sku_label, "state": a.state}
                for a in getattr(obj, "current_assignments", [])]


@extend_schema_view(
    list=extend_schema(summary="List directory users", parameters=[
        OpenApiParameter("upn", str, description="Exact user principal name or e-mail (searched by blind index)."),
        OpenApiParameter("search", str, description="Part of a name, user principal name or e-mail (ignores case "
                                                    "and accents; see docs/decisions/013-directory-search.md)."),
        OpenApiParameter("sku", str, description="Tenant SKU id (TenantSku) to filter on."),
        OpenApiParameter("status", str, enum=["licensed", "unlicensed", "inactive", "no_location", "failed"]),
    ]),
    retrieve=extend_schema(summary="Get a directory user"),
)
class DirectoryUserViewSet(DirectoryUserActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           OrganizationViewSet):
    model = DirectoryUser
    serializer_class = DirectoryUserSerializer
    # Writes are the user actions of DirectoryUserActionsMixin (directory_users.py).
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.LICENSES_MANAGE}

    def scoped_queryset(self):
        params = self.request.query_params
        sku = None
        if params.get("sku"):
            sku = TenantSku.objects.for_org(self.organization).filter(pk=_uuid(params["sku"])).first()
            if sku is None:
                return DirectoryUser.objects.none()
        if params.get("search"):
            status = params.get("status", "")
            pks = directory_search.search_directory(
                self.organization, q=params["search"], sku=sku,
                status=status if status in ("licensed", "unlicensed", "no_location", "failed") else "")
            return DirectoryUser.objects.for_org(self.organization).filter(pk__in=pks).order_by("created_at", "pk")
        return selectors_directory.directory_users(
            self.organization, q=params.get("upn", ""), sku=sku, status=params.get("status", "")
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        selectors_directory.attach_assignments(self.organization, page if page is not None else queryset)
        return page

    def get_object(self):
        user = super().get_object()
        selectors_directory.attach_assignments(self.organization, [user])
        return user


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class DirectorySyncSerializer(ModelSerializer):
    class Meta:
        model = DirectorySync
        fields = ["id", "status", "trigger", "created_at", "started_at", "finished_at", "pages", "users_seen",
                  "users_created", "users_updated", "users_unchanged", "users_removed", "skus_seen", "error_code",
                  "error_message"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Directory sync runs, newest first"),
    retrieve=extend_schema(summary="One directory sync run (poll it for progress)"),
    create=extend_schema(summary="Start a directory sync (joins the one in flight)", request=None,
                         parameters=[IDEMPOTENCY_KEY_PARAMETER], responses={202: DirectorySyncSerializer,
                                                                             **error_responses(409)}),
)
class DirectorySyncViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = DirectorySync
    serializer_class = DirectorySyncSerializer
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.LICENSES_MANAGE}

    def scoped_queryset(self):
        return DirectorySync.objects.for_org(self.organization)

    def create(self, request):
        try:
            sync = directory_services.directory_sync_request(
                organization=self.organization, actor=audit_actor(self.actor),
                requested_by=request.user if not hasattr(self.actor, "prefix") else None,
            )
        except directory_services.DirectoryNotLinked as exc:
            raise _refusal(exc) from None
        return Response(DirectorySyncSerializer(sync).data, status=status.HTTP_202_ACCEPTED)


# --- assignments -----------------------------------------------------------------------------------------------
class AssignmentSerializer(ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=DirectoryUser.objects.none())
    sku = serializers.PrimaryKeyRelatedField(queryset=TenantSku.objects.none())
    sku_id = serializers.UUIDField(source="sku.sku_id", read_only=True)
    disabled_plans = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)

    class Meta:
        model = LicenseAssignment
        fields = ["id", "user", "sku", "sku_id", "state", "source", "disabled_plans", "bulk_job", "assigned_at",
                  "removed_at", "error_code", "error_message", "fix_hint", "created_at"]
        read_only_fields = ["state", "source", "bulk_job", "assigned_at", "removed_at", "error_code",
                            "error_message", "fix_hint", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        organization = getattr(request, "organization", None)
        if organization is not None:
            self.fields["user"].queryset = DirectoryUser.objects.for_org(organization)
            self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class AssignRequestSerializer(serializers.Serializer):
    """What a client posts to assign. Not the model serializer: its unique (user, sku) validator would refuse
    the row that license_assign reuses for a license given back, and an assignment that already exists."""

    user = serializers.PrimaryKeyRelatedField(queryset=DirectoryUser.objects.none())
    sku = serializers.PrimaryKeyRelatedField(queryset=TenantSku.objects.none())
    disabled_plans = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = getattr(self.context.get("request"), "organization", None)
        if organization is not None:
            self.fields["user"].queryset = DirectoryUser.objects.for_org(organization)
            self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class ReassignSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(queryset=DirectoryUser.objects.none(),
                                              help_text="The directory user who gets the license.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = getattr(self.context.get("request"), "organization", None)
        if organization is not None:
            self.fields["user"].queryset = DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)


@extend_schema_view(
    list=extend_schema(summary="List license assignments", parameters=[
        OpenApiParameter("state", str, enum=LicenseAssignment.State.values),
        OpenApiParameter("user", str), OpenApiParameter("bulk_job", str)]),
    retrieve=extend_schema(summary="Get a license assignment"),
    create=extend_schema(summary="Assign a license to a user (seat reserved now, Graph call queued)",
                         description="Posting an assignment the user already holds returns it (200); a license "
                                     "the user gave back earlier is assigned again (202).",
                         parameters=[IDEMPOTENCY_KEY_PARAMETER], request=AssignRequestSerializer,
                         responses={200: AssignmentSerializer, 202: AssignmentSerializer,
                                    **error_responses(400, 409)}),
    destroy=extend_schema(summary="Unassign (queued; the seat is freed once Microsoft confirms)",
                          responses={202: AssignmentSerializer, **error_responses(409)}),
    reassign=extend_schema(
        summary="Move this license to another user in one step (leaver to joiner)",
        description="The seat counts as the new user's from this moment and the previous user's assignment "
                    "becomes `handover`; Microsoft removes it from one and adds it to the other in one queued "
                    "operation. Returns the new user's assignment. A full license can be reassigned.",
        request=ReassignSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: AssignmentSerializer, **error_responses(400, 404, 409)}),
)
class LicenseAssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = LicenseAssignment
    serializer_class = AssignmentSerializer
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.LICENSES_MANAGE, "DELETE": Perm.LICENSES_MANAGE}

    def scoped_queryset(self):
        rows = LicenseAssignment.objects.for_org(self.organization).select_related("sku")
        params = self.request.query_params
        if params.get("state") in LicenseAssignment.State.values:
            rows = rows.filter(state=params["state"])
        for name in ("user", "bulk_job"):
            if params.get(name):
                rows = rows.filter(**{f"{name}_id": _uuid(params[name])})
        return rows.order_by("created_at", "pk")

    def create(self, request):
        serializer = AssignRequestSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            assignment = assignment_services.license_assign(
                organization=self.organization, user=data["user"], sku=data["sku"], actor=audit_actor(self.actor),
                disabled_plans=[str(p) for p in data.get("disabled_plans", [])],
            )
        except (assignment_services.SeatsExhausted, assignment_services.AssignmentRefused, ValidationError) as exc:
            raise _refusal(exc) from None
        # Already assigned and nothing changed: nothing was queued, so this is the row as it stands.
        done = assignment.state == LicenseAssignment.State.ASSIGNED
        return Response(AssignmentSerializer(assignment, context={"request": request}).data,
                        status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        assignment = self.get_object()
        serializer = ReassignSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        try:
            joiner = reassign_services.license_reassign(
                organization=self.organization, assignment=assignment, to_user=serializer.validated_data["user"],
                actor=audit_actor(self.actor))
        except assignment_services.AssignmentRefused as exc:
            raise ApiError(exc.message, code=exc.code, status_code=409) from None
        return Response(AssignmentSerializer(joiner, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)

    def destroy(self, request, pk=None):
        assignment = self.get_object()
        try:
            assignment = assignment_services.license_unassign(
                organization=self.organization, assignment=assignment, actor=audit_actor(self.actor)
            )
        except assignment_services.AssignmentRefused as exc:
            raise ApiError(exc.message, code=exc.code, status_code=409) from None
        return Response(AssignmentSerializer(assignment, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


# --- bulk --------------------------------------------------------------------------------------------------------
class BulkRequestSerializer(serializers.Serializer):
    sku = serializers.PrimaryKeyRelatedField(queryset=TenantSku.objects.none())
    action = serializers.ChoiceField(choices=BulkJob.Action.choices, default=BulkJob.Action.ASSIGN)
    users = serializers.ListField(child=serializers.CharField(max_length=320, allow_blank=True),
                                  max_length=MAX_BULK_USERS, help_text="User principal names or e-mail addresses.")
    disabled_plans = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)
    dry_run = serializers.BooleanField(default=True, help_text="Only report what would happen (the default).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = getattr(self.context.get("request"), "organization", None)
        if organization is not None:
            self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class BulkRowSerializer(ModelSerializer):
    class Meta:
        model = BulkJobRow
        fields = ["row_number", "identifier", "user", "outcome", "error_code", "message"]


class BulkJobSerializer(ModelSerializer):
    seats_short = serializers.IntegerField(read_only=True)

    class Meta:
        model = BulkJob
        fields = ["id", "action", "source", "status", "sku", "disabled_plans", "total_rows", "change_rows",
                  "unchanged_rows", "invalid_rows", "seats_needed", "seats_available", "seats_short", "succeeded",
                  "failed", "created_at", "confirmed_at", "finished_at"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Bulk jobs, newest first"),
    retrieve=extend_schema(summary="Bulk job status and progress"),
)
class BulkJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = BulkJob
    serializer_class = BulkJobSerializer
    required_permissions = {"GET": Perm.VIEW, "POST": Perm.LICENSES_MANAGE}

    def scoped_queryset(self):
        return BulkJob.objects.for_org(self.organization)

    def get_object(self):
        return selectors_directory.bulk_job_with_current_seats(self.organization, super().get_object())

    @extend_schema(summary="Bulk assign or unassign (dry run by default): per-row results, seats needed",
                   request=BulkRequestSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER],
                   responses={200: BulkJobSerializer, 202: BulkJobSerializer, **error_responses(400, 409)})
    def create(self, request):
        payload = BulkRequestSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        # Written as real CSV so an identifier with a comma or a quote stays one row of one cell.
        text = io.StringIO()
        csv.writer(text).writerows([u] for u in data["users"])
        upload = io.BytesIO(text.getvalue().encode())
        try:
            job = bulk_services.bulk_preview_csv(
                organization=self.organization, sku=data["sku"], action=data["action"], upload=upload,
                actor=audit_actor(self.actor), disabled_plans=[str(p) for p in data["disabled_plans"]],
            )
            if not data["dry_run"]:
                job = bulk_services.bulk_job_confirm(organization=self.organization, job=job,
                                                     actor=audit_actor(self.actor))
        except (assignment_services.SeatsExhausted, bulk_services.BulkInputError, ValidationError) as exc:
            raise _refusal(exc) from None
        rows = BulkJobRow.objects.for_org(self.organization).filter(job=job).order_by("row_number")[:1000]
        body = {**BulkJobSerializer(job).data, "rows": BulkRowSerializer(rows, many=True).data}
        return Response(body, status=status.HTTP_200_OK if data["dry_run"] else status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Run a previewed bulk job", request=None, parameters=[IDEMPOTENCY_KEY_PARAMETER],
                   responses={202: BulkJobSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        job = self.get_object()
        try:
            job = bulk_services.bulk_job_confirm(organization=self.organization, job=job,
                                                 actor=audit_actor(self.actor))
        except assignment_services.SeatsExhausted as exc:
            raise _refusal(exc) from None
        return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Per-row results of a bulk job", responses=BulkRowSerializer(many=True))
    @action(detail=True, methods=["get"])
    def rows(self, request, pk=None):
        job = self.get_object()
        rows = BulkJobRow.objects.for_org(self.organization).filter(job=job).order_by("row_number")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BulkRowSerializer(page, many=True).data)


# --- reports -----------------------------------------------------------------------------------------------------
class UsageRowSerializer(serializers.Serializer):
    tenant_sku = serializers.UUIDField(source="sku.pk")
    sku_id = serializers.UUIDField(source="sku.sku_id")
    name = serializers.CharField(source="sku.label")
    purchased = serializers.IntegerField(help_text="Every seat bought, suspended ones included.")
    suspended = serializers.IntegerField(help_text="Seats of suspended subscriptions: paid, not assignable.")
    state = serializers.ChoiceField(choices=["active", "suspended", "partly_suspended"])
    assigned = serializers.IntegerField()
    available = serializers.IntegerField(help_text="Usable seats not assigned.")
    unit_price_monthly = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    unassigned_cost_monthly = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)


class RenewalSerializer(serializers.Serializer):
    subscription = serializers.UUIDField(source="subscription.pk")
    name = serializers.CharField(source="subscription.__str__")
    term_ends_on = serializers.DateField()
    renews_on = serializers.DateField()
    last_day_to_reduce = serializers.DateField()
    window_closes_on = serializers.DateField()
    auto_renew = serializers.BooleanField()
    quantity = serializers.IntegerField()
    projected_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    notes = serializers.ListField(child=serializers.CharField())


class UsageHistoryPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    assigned = serializers.IntegerField()


class UsageHistoryPurchasedSerializer(serializers.Serializer):
    day = serializers.DateField()
    purchased = serializers.IntegerField()


class UsageHistorySerializer(serializers.Serializer):
    tenant_sku = serializers.UUIDField()
    name = serializers.CharField()
    points = UsageHistoryPointSerializer(many=True)
    purchased = UsageHistoryPurchasedSerializer(many=True)


class UsageReportViewSet(OrganizationViewSet):
    model = TenantSku
    required_permissions = {"GET": Perm.VIEW}
    # The report and the history are whole lists (one row per license); only the inactive users page.
    pagination_class = None

    def scoped_queryset(self):
        return TenantSku.objects.for_org(self.organization)

    @extend_schema(summary="Seats per license now, with the monthly cost of unassigned seats",
                   responses=UsageRowSerializer(many=True))
    def list(self, request):
        return Response(UsageRowSerializer(selectors_usage.pool_rows(self.organization), many=True).data)

    @extend_schema(summary="Daily assigned seats per license", parameters=[OpenApiParameter("days", int)],
                   responses=UsageHistorySerializer(many=True))
    @action(detail=False, methods=["get"])
    def history(self, request):
        try:
            days = min(max(int(request.query_params.get("days", 90)), 1), 366)
        except ValueError:
            raise ApiError("days must be a whole number.", code="invalid", status_code=400) from None
        history = selectors_usage.usage_history(self.organization, days=days)
        return Response([{"tenant_sku": str(h["tenant_sku_id"]), "name": h["label"],
                          "points": [{"day": d, "assigned": a} for d, a in h["points"]],
                          "purchased": [{"day": d, "purchased": p} for d, p in h["purchased"]]} for h in history])

    @extend_schema(summary="Licensed users inactive for the organisation's threshold", responses=dict)
    @action(detail=False, methods=["get"])
    def inactive(self, request):
        rows = selectors_usage.inactive_assignments(self.organization)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([
            {"assignment": str(a.pk), "user": str(a.user_id), "user_principal_name": a.user.user_principal_name,
             "sku": a.sku.label, "last_sign_in_at": a.user.last_sign_in_at} for a in page
        ])


class RenewalViewSet(OrganizationViewSet):
    model = TenantSku
    required_permissions = {"GET": Perm.VIEW}
    pagination_class = None  # the calendar is one list of the next 12 months

    def scoped_queryset(self):
        return TenantSku.objects.for_org(self.organization)

    @extend_schema(summary="Renewal calendar for the next 12 months", responses=RenewalSerializer(many=True))
    def list(self, request):
        return Response(RenewalSerializer(selectors_usage.renewal_calendar(self.organization), many=True).data)
