from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from accounts.admin_grants import GrantScopedAdmin
from accounts.selectors import members_of, members_of_granted
from core.admin import ReadOnlyAdmin
from core.models import AuditEvent
from core.tenancy import person_context, tenant_context

from . import fraud
from .models import FraudCase, LoginSignal


@admin.register(AuditEvent)
class AuditEventAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    """The audit chain is append-only: a security responder reads the events of the organisations they hold
    a grant for; nobody can add, edit or delete through the admin. Account events that belong to no
    organisation are not shown here (``manage.py verify_audit`` walks the whole chain)."""

    grant_area = "security"

    list_display = ("sequence", "occurred_at", "action", "actor_type", "actor_id", "organization_id", "target_type")
    list_filter = ("actor_type", "action")
    search_fields = ("action", "target_id", "actor_id", "request_id")
    ordering = ("-sequence",)
    list_select_related = False
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(LoginSignal)
class LoginSignalAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    """The security events queue: what login monitoring found and how it responded. Read-only.

    A security responder sees the findings about the people of the organisations their grants cover,
    read (and audited) like any customer row; row-level security per person admits exactly those
    people's rows. Findings about attempts on unknown addresses belong to no organisation and reach
    security staff by e-mail only (docs/decisions/032-row-level-security-per-person.md)."""

    grant_area = "security"
    grant_org_field = "user__memberships__organization"

    list_display = ("occurred_at", "kind", "risk", "response", "user_id", "sign_in_event_id")
    list_filter = ("risk", "kind", "response", ("occurred_at", admin.DateFieldListFilter))
    ordering = ("-occurred_at",)
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def grant_filter(self, queryset, org_ids):
        # A subquery, not a join: a person in two granted organisations is listed once.
        return queryset.filter(user_id__in=members_of(org_ids))

    def _scoped(self, request, view):
        orgs = {**self.grant_orgs(request), **self.grant_orgs(request, change=True)}
        # Read in the granted organisations' own tenant context (memberships have row-level security, 044).
        with person_context(*members_of_granted(orgs)):
            return super()._scoped(request, view)


@admin.register(FraudCase)
class FraudCaseAdmin(GrantScopedAdmin, admin.ModelAdmin):
    """Azure fraud cases of the customers a security responder holds a grant for. Read-only fields; the
    responses are actions, through services, allowed where the grant's role may change the security area."""

    grant_area = "security"

    list_display = ("created_at", "organization", "signal", "source", "score", "action", "status",
                    "blocks_provisioning", "azure_subscription_id")
    list_filter = ("status", "source", "action", "blocks_provisioning")
    search_fields = ("azure_subscription_id", "signal")
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ["suspend_subscription", "resolve_as_fraud", "resolve_as_not_fraud"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, do, done: str):
        count = 0
        for case in queryset:
            try:
                with tenant_context(case.organization_id):
                    do(case)
            except ValidationError as exc:
                self.message_user(request, f"{case}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} case(s) {done}.", messages.SUCCESS)

    @admin.action(description="Suspend the Azure subscription through Partner Center", permissions=["change"])
    def suspend_subscription(self, request, queryset):
        self._each(request, queryset, lambda case: fraud.fraud_case_suspend(case=case, user=request.user),
                   "sent for suspension")

    @admin.action(description="Resolve as fraud (tells Microsoft: Fraud)", permissions=["change"])
    def resolve_as_fraud(self, request, queryset):
        self._each(request, queryset, lambda case: fraud.fraud_case_resolve(case=case, user=request.user, fraud=True),
                   "resolved as fraud")

    @admin.action(description="Resolve as not fraud (tells Microsoft: Ignore)", permissions=["change"])
    def resolve_as_not_fraud(self, request, queryset):
        self._each(request, queryset,
                   lambda case: fraud.fraud_case_resolve(case=case, user=request.user, fraud=False),
                   "resolved as not fraud")
