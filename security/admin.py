from django.contrib import admin

from core.models import AuditEvent

from .models import LoginSignal


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit chain is append-only: staff can read it, nobody can add, edit or delete through the admin."""

    list_display = ("sequence", "occurred_at", "action", "actor_type", "actor_id", "organization_id", "target_type")
    list_filter = ("actor_type", "action")
    search_fields = ("action", "target_id", "actor_id", "request_id")
    ordering = ("-sequence",)
    list_select_related = False
    show_full_result_count = False
    actions = None

    def get_queryset(self, request):
        # Staff read every organisation's events here; the reseller operates the whole chain.
        return AuditEvent.unscoped_objects.all()

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LoginSignal)
class LoginSignalAdmin(admin.ModelAdmin):
    """The security events queue: what login monitoring found and how it responded. Read-only."""

    list_display = ("occurred_at", "kind", "risk", "response", "user_id", "sign_in_event_id")
    list_filter = ("risk", "kind", "response", ("occurred_at", admin.DateFieldListFilter))
    ordering = ("-occurred_at",)
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
