"""Staff admin for legal holds (placed and released through the retention services) and purge runs (read-only)."""

from django.contrib import admin

from privacy.models import LegalHold, RetentionRun
from privacy.services.retention import legal_hold_place, legal_hold_release


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "user", "owner", "released_at")
    list_filter = ("released_at",)
    fields = ("organization", "user", "reason")
    raw_id_fields = ("organization", "user")
    actions = ["release"]

    def save_model(self, request, obj, form, change):
        if change:
            return  # a hold is never edited: release it and place another
        placed = legal_hold_place(actor=request.user, reason=obj.reason, organization=obj.organization, user=obj.user)
        obj.pk = placed.pk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Release the selected holds")
    def release(self, request, queryset):
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
