"""Staff admin for the licensing core: subscriptions (with drift), orders, provisioning operations.

Tenant rows are shown only for organisations whose staff grant covers licensing
(``accounts.admin_grants.GrantScopedAdmin``): a support reader views, a license operator also runs
the actions; every read and action is in the audit chain with the grant. Nothing is edited
directly: every action calls a service inside the organisation's tenant context, and the service
audits it with the staff member as actor (and the grant).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from accounts.admin_grants import GrantScopedAdmin
from core.audit import Actor
from core.tenancy import tenant_context
from core.timezones import format_day

from . import (
    admin_directory,  # noqa: F401  (L2: directory sync status, service announcements)
    nce,
)
from .models import (
    GdapRelationship,
    Order,
    Product,
    ProvisioningAttempt,
    ProvisioningOperation,
    Subscription,
    SubscriptionEvent,
)
from .provisioning import operation_mark_failed, operation_retry
from .services import subscriptions as subscription_services


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Shown to the customer and kept in the audit log.")


OVERRIDE_HELP = ("Leave empty: the change is refused while more licenses are assigned than it leaves (the "
                 "customer's rule too). Fill in only to go ahead anyway; the reason is kept in the audit log.")


class SuspendForm(ReasonForm):
    override_reason = forms.CharField(max_length=300, required=False, label="Override the seat check because",
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP)


class SeatChangeForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, label="New number of seats")
    override_reason = forms.CharField(max_length=300, required=False, label="Override the seat check because",
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP)


class CancelForm(forms.Form):
    override_reason = forms.CharField(max_length=300, required=False, label="Override the seat check because",
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP)


class StaffTenantAdmin(GrantScopedAdmin, admin.ModelAdmin):
    """Read-only view over the granted organisations' rows; changes happen through actions only."""

    grant_area = "licensing"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


def _with_reason(modeladmin, request, queryset, *, title: str, action: str, apply, form_class=ReasonForm):
    """An admin action that first asks for a reason (or the ``form_class``'s fields) on an intermediate page,
    then applies ``apply(obj, reason)`` (``apply(obj, cleaned_data)`` for another form)."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            done = 0
            value = form.cleaned_data["reason"] if form_class is ReasonForm else form.cleaned_data
            for obj in queryset:
                try:
                    with tenant_context(obj.organization_id):
                        apply(obj, value)
                    done += 1
                except (ValueError, ValidationError, nce.RuleViolation) as exc:
                    modeladmin.message_user(request, f"{obj}: {exc}", messages.ERROR)
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
            return None
    else:
        form = form_class()
    return TemplateResponse(request, "admin/licensing/reason.html", {
        **modeladmin.admin_site.each_context(request), "title": title, "form": form, "objects": queryset,
        "action": action, "opts": modeladmin.model._meta,
    })


class ReadOnlyHistoryInline(admin.TabularInline):
    """A child history (attempts, events) shown read-only under its parent. The parent's view runs in the
    granted organisations' tenant context, so the default (tenant) manager shows only their rows."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class AttemptInline(ReadOnlyHistoryInline):
    model = ProvisioningAttempt
    fields = ["number", "outcome", "started_at", "finished_at", "error_code", "error", "retry_after_seconds"]
    readonly_fields = fields


@admin.register(ProvisioningOperation)
class ProvisioningOperationAdmin(StaffTenantAdmin):
    list_display = ["created_at", "organization", "kind", "status", "attempts", "last_error_code", "next_attempt_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["organization"]
    search_fields = ["=id", "=ms_request_id", "=target_id"]
    exclude = ["payload", "result"]
    inlines = [AttemptInline]
    actions = ["retry", "mark_failed"]

    @admin.action(description="Retry (failed or dead operations)")
    def retry(self, request, queryset):
        done = 0
        for operation in queryset:
            try:
                with tenant_context(operation.organization_id):
                    operation_retry(operation=operation, actor=Actor.staff(request.user))
                done += 1
            except ValueError as exc:
                self.message_user(request, f"{operation}: {exc}", messages.ERROR)
        self.message_user(request, f"{done} operation(s) queued again.", messages.SUCCESS)

    @admin.action(description="Mark failed, with a reason")
    def mark_failed(self, request, queryset):
        return _with_reason(
            self, request, queryset, title="Mark operations failed", action="mark_failed",
            apply=lambda op, reason: operation_mark_failed(operation=op, actor=Actor.staff(request.user),
                                                           reason=reason),
        )


class EventInline(ReadOnlyHistoryInline):
    model = SubscriptionEvent
    fields = ["created_at", "action", "before", "after", "actor_label", "note"]
    readonly_fields = fields


class DriftFilter(admin.SimpleListFilter):
    title = "drift"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [("yes", "Drift found by the last reconcile")]

    def queryset(self, request, queryset):
        return queryset.exclude(drift={}) if self.value() == "yes" else queryset


@admin.register(Subscription)
class SubscriptionAdmin(StaffTenantAdmin):
    list_display = ["product_title", "organization", "status", "quantity", "term_duration", "billing_cycle",
                    "term_ends", "renews", "last_day_to_reduce", "auto_renew", "drift_detected_at"]
    list_filter = ["status", DriftFilter, "term_duration"]
    list_select_related = ["organization"]
    search_fields = ["=ms_subscription_id", "product_title"]
    inlines = [EventInline]
    actions = ["change_seats", "cancel", "suspend", "reactivate"]

    @admin.action(description="Change seats (refused below the licenses assigned)")
    def change_seats(self, request, queryset):
        return _with_reason(
            self, request, queryset, title="Change seats", action="change_seats", form_class=SeatChangeForm,
            apply=lambda sub, data: subscription_services.subscription_change_quantity(
                subscription=sub, actor=Actor.staff(request.user), quantity=data["quantity"],
                override_reason=data["override_reason"]),
        )

    @admin.action(description="Cancel (within the window; refused while licenses are assigned)")
    def cancel(self, request, queryset):
        return _with_reason(
            self, request, queryset, title="Cancel subscriptions", action="cancel", form_class=CancelForm,
            apply=lambda sub, data: subscription_services.subscription_cancel(
                subscription=sub, actor=Actor.staff(request.user), override_reason=data["override_reason"]),
        )

    # The same words and dates as the customer's pages (licensing.nce), as calendar days.
    @admin.display(description=nce.TERM_ENDS_LABEL, ordering="commitment_end")
    def term_ends(self, obj):
        return format_day(obj.term_ends_on)

    @admin.display(description=nce.RENEWS_ON_LABEL, ordering="commitment_end")
    def renews(self, obj):
        return format_day(obj.renews_on) if obj.auto_renew else "—"

    @admin.display(description=nce.LAST_DAY_TO_REDUCE_LABEL, ordering="commitment_end")
    def last_day_to_reduce(self, obj):
        return format_day(obj.last_day_to_reduce)

    @admin.action(description="Suspend, with a reason")
    def suspend(self, request, queryset):
        return _with_reason(
            self, request, queryset, title="Suspend subscriptions", action="suspend", form_class=SuspendForm,
            apply=lambda sub, data: subscription_services.subscription_suspend(
                subscription=sub, actor=Actor.staff(request.user), reason=data["reason"],
                override_reason=data["override_reason"]),
        )

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        done = 0
        for subscription in queryset:
            try:
                with tenant_context(subscription.organization_id):
                    subscription_services.subscription_reactivate(subscription=subscription,
                                                                  actor=Actor.staff(request.user))
                done += 1
            except (ValidationError, nce.RuleViolation) as exc:
                self.message_user(request, f"{subscription}: {exc}", messages.ERROR)
        self.message_user(request, f"{done} subscription(s) reactivating.", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(StaffTenantAdmin):
    list_display = ["created_at", "organization", "product_title", "quantity", "total", "status"]
    list_filter = ["status"]
    list_select_related = ["organization"]


@admin.register(GdapRelationship)
class GdapRelationshipAdmin(StaffTenantAdmin):
    list_display = ["display_name", "organization", "status", "ends_at", "last_refreshed_at"]
    list_filter = ["status"]
    list_select_related = ["organization"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "product_id", "family", "is_active", "synced_at"]
    list_filter = ["family", "is_active"]
    search_fields = ["title", "product_id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
