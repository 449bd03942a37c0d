from django.contrib import admin

from accounts.admin_grants import GrantScopedAdmin
from core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(GrantScopedAdmin, admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
