"""Admin building blocks every floor may use."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these rows; nothing is added, changed or deleted through the admin (records kept by
    services: audit events, sign-in findings, issued documents, what Microsoft said)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
