"""Staff admin for legal holds (placed and released through the retention services) and purge runs (read-only).

Legal holds name a customer or a person: only a privacy operator's grant shows and changes them
(accounts.admin_grants), audited with the grant, in the tenant context of the granted organisations and the
person context of their members (row-level security, decision 045). Purge runs hold counts only.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from accounts.admin_grants import GrantScopedAdmin
from accounts.models import Membership
from accounts.selectors import members_of_granted
from core.tenancy import person_context
from privacy.models import LegalHold, RetentionRun
from privacy.services.retention import legal_hold_place, legal_hold_release


@admin.register(LegalHold)
class LegalHoldAdmin(GrantScopedAdmin, admin.ModelAdmin):
    grant_area = "privacy"
    list_display = ("created_at", "organization", "user", "owner", "released_at")
    list_filter = ("released_at",)
    fields = ("organization", "user", "reason")
    raw_id_fields = ("organization", "user")
    actions = ["release"]

    def grant_filter(self, queryset, org_ids):
        org_ids = list(org_ids)
        members = Membership.objects.filter(organization_id__in=org_ids).values("user_id")
        return queryset.filter(Q(organization_id__in=org_ids) | Q(organization__isnull=True, user_id__in=members))

    def _scoped(self, request, view):
        # A hold on a person (no organisation) has row-level security per person: the view runs in the person
        # context of the granted organisations' members too, as the security queue does.
        # The members are read in the granted organisations' own tenant context (memberships have row-level
        # security too, decision 044).
        orgs = {**self.grant_orgs(request), **self.grant_orgs(request, change=True)}
        with person_context(*members_of_granted(orgs)):
            return super()._scoped(request, view)

    def grant_org_ids_of(self, obj) -> set[str]:
        if obj.organization_id:
            return {str(obj.organization_id)}
        if obj.user_id:
            return {str(org) for org in Membership.objects.filter(user_id=obj.user_id)
                    .values_list("organization_id", flat=True)}
        return set()

    def save_model(self, request, obj, form, change):
        if change:
            return  # a hold is never edited: release it and place another
        if not self.grant_org_ids_of(obj) & self.grant_orgs(request, change=True).keys():
            raise PermissionDenied("No grant lets you place a hold for this organisation or person.")
        placed = legal_hold_place(actor=request.user, reason=obj.reason, organization=obj.organization, user=obj.user)
        obj.pk = placed.pk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Release the selected holds")
    def release(self, request, queryset):
        # response_action has already narrowed ``queryset`` to the holds this operator's grants cover.
        for hold_id in queryset.values_list("pk", flat=True):
            legal_hold_release(hold_id=hold_id, actor=request.user)


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "finished_at", "dry_run", "counts", "held")
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
