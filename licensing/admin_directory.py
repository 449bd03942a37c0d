"""Staff admin: directory sync status per organisation, and service-health announcements.

Sync runs are read-only here (staff re-run a sync through the service, audited). Announcements are
written by staff; publishing and withdrawing go through the notification services, which audit.
Sync runs are shown only for organisations whose grant covers licensing (accounts.admin_grants).
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple

from accounts.admin_grants import GrantScopedAdmin
from accounts.selectors import organizations_across_tenants
from core.audit import Actor
from core.tenancy import tenant_context

from .models import DirectorySync, ServiceAnnouncement
from .selectors import directory as selectors_directory
from .services import directory as directory_services
from .services import notifications as notification_services


@admin.register(DirectorySync)
class DirectorySyncAdmin(GrantScopedAdmin, admin.ModelAdmin):
    grant_area = "licensing"
    list_display = ["organization", "status", "trigger", "created_at", "finished_at", "users_seen", "users_created",
                    "users_updated", "users_removed", "error_code"]
    list_filter = ["status", "trigger"]
    ordering = ["-created_at"]
    list_select_related = ["organization"]
    actions = ["resync"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Sync these organisations' directories again")
    def resync(self, request, queryset):
        organizations = {run.organization for run in queryset}
        for organization in organizations:
            with tenant_context(organization):
                directory_services.directory_sync_request(
                    organization=organization, actor=Actor.staff(request.user), requested_by=request.user
                )
        messages.success(request, f"Queued {len(organizations)} directory sync(s).")


class ServiceAnnouncementForm(forms.ModelForm):
    """Shows the organisations an announcement targets as the system role reads them: the targeting rows are
    under row-level security, and the admin has no tenant context of its own.

    The organisations to choose from are every customer's, so they are read as the system role too
    (``organizations_across_tenants``, decision 044): a queryset on the organisations table, listed or checked
    as the application role outside any context, would offer and accept none. The field gives organisation
    ids, which the notification service writes in their tenant context (``announcement_targets_set``)."""

    organizations = forms.TypedMultipleChoiceField(
        coerce=uuid.UUID, required=False, label="Organizations",
        widget=FilteredSelectMultiple("organizations", is_stacked=False))

    class Meta:
        model = ServiceAnnouncement
        fields = ["title", "body", "severity", "all_organizations", "organizations", "ends_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "organizations" in self.fields:
            self.fields["organizations"].choices = [
                (str(org.pk), str(org)) for org in sorted(organizations_across_tenants(), key=str)]
        if self.instance.pk is not None and "organizations" in self.fields and not self.is_bound:
            self.initial["organizations"] = selectors_directory.announcement_target_ids(self.instance)


@admin.register(ServiceAnnouncement)
class ServiceAnnouncementAdmin(admin.ModelAdmin):
    """Announcements span organisations: their targets are written through the notification service (in the
    tenant context of the organisations added or removed), never by the form's own many-to-many save."""

    form = ServiceAnnouncementForm
    list_display = ["title", "severity", "all_organizations", "published_at", "ends_at"]
    list_filter = ["severity", "all_organizations"]
    filter_horizontal = ["organizations"]
    readonly_fields = ["published_at", "created_by"]
    actions = ["publish", "withdraw"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        notification_services.announcement_targets_set(
            announcement=form.instance, organizations=form.cleaned_data.get("organizations", ()),
            actor=Actor.staff(request.user))
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        notification_services.announcement_delete(announcement=obj, actor=Actor.staff(request.user))

    def delete_queryset(self, request, queryset):
        for announcement in queryset:
            notification_services.announcement_delete(announcement=announcement, actor=Actor.staff(request.user))

    @admin.action(description="Publish now")
    def publish(self, request, queryset):
        for announcement in queryset:
            notification_services.announcement_publish(announcement=announcement, actor=Actor.staff(request.user))
        messages.success(request, "Published.")

    @admin.action(description="Withdraw (end now)")
    def withdraw(self, request, queryset):
        for announcement in queryset:
            notification_services.announcement_withdraw(announcement=announcement, actor=Actor.staff(request.user))
        messages.success(request, "Withdrawn.")
