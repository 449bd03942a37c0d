"""Staff grants in the admin: a staff member's own grants, asking for access, giving it back, and
break-glass access for superusers (accounts.grants holds the rules).

Asking names the organisation by its slug, which the customer gives with the ticket: without a
grant a staff member sees no customer, not even its name.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Q, When
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.crypto import blind_index
from core.tenancy import bound_to_default_alias, person_context, unscoped_no_tenant

from .grants import MAX_BREAK_GLASS, staff_grant_break_glass, staff_grant_request, staff_grant_revoke
from .models import ORGANIZATION_SLUG_INDEX, Organization, StaffGrant, StaffRole
from .reauth import has_recent_mfa, reverify_redirect


class _OrganizationSlugField(forms.SlugField):
    def clean(self, value):
        slug = super().clean(value)
        # A customer may quote the slug their organisation had before slugs were neutral (decision 041). The
        # staff member holds no grant there yet, so no organisation is in scope: the slug decides it, as the
        # system role (decision 044), in one statement; the current slug wins over an old one.
        with unscoped_no_tenant(atomic=False):
            organization = (
                Organization.objects.filter(
                    Q(slug=slug) | Q(previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX, slug))
                )
                .order_by(Case(When(slug=slug, then=0), default=1))
                .first()
            )
        if organization is None:
            raise ValidationError("No customer organisation has this slug; ask the customer for it.")
        return bound_to_default_alias([organization])[0]


class GrantRequestForm(forms.Form):
    organization = _OrganizationSlugField(label="Organisation (slug)", max_length=60)
    roles = forms.MultipleChoiceField(choices=StaffRole.choices, widget=forms.CheckboxSelectMultiple)
    hours = forms.IntegerField(
        min_value=1,
        max_value=730 * 24,
        initial=8,
        label="For how many hours",
        help_text="Hours for just-in-time support; at most 730 days (17520 hours).",
    )
    justification = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the customer and kept in the audit log.",
    )
    ticket_reference = forms.CharField(max_length=64, required=False)


class BreakGlassForm(forms.Form):
    organization = _OrganizationSlugField(label="Organisation (slug)", max_length=60)
    roles = forms.MultipleChoiceField(choices=StaffRole.choices, widget=forms.CheckboxSelectMultiple)
    minutes = forms.IntegerField(
        min_value=15,
        max_value=int(MAX_BREAK_GLASS.total_seconds() // 60),
        initial=60,
        label="For how many minutes",
        help_text="At most four hours.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required. Security is alerted and the customer sees this access afterwards.",
    )


@admin.register(StaffGrant)
class StaffGrantAdmin(admin.ModelAdmin):
    list_display = ["organization", "staff", "roles_display", "status", "starts_at", "expires_at", "break_glass"]
    list_filter = ["status", "break_glass"]
    list_select_related = ["organization", "staff"]
    fields = [
        "organization",
        "staff",
        "roles",
        "status",
        "starts_at",
        "expires_at",
        "justification",
        "ticket_reference",
        "break_glass",
        "auto_approved",
        "approved_at",
        "ended_at",
    ]
    readonly_fields = fields
    actions = ["give_back"]

    @admin.display(description="Roles")
    def roles_display(self, obj):
        return obj.get_roles_display()

    def get_queryset(self, request):
        # Grants are the staff side's tenancy: a staff member sees their own; superusers oversee all
        # grants (roles and dates, not the customers' data, which still needs a grant).
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(staff=request.user)

    def has_add_permission(self, request):
        return False  # asked for through "Request access", which applies the customer's policy

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def get_urls(self):
        return [
            path("request/", self.admin_site.admin_view(self.request_view), name="accounts_staffgrant_request"),
            path(
                "break-glass/",
                self.admin_site.admin_view(self.break_glass_view),
                name="accounts_staffgrant_break_glass",
            ),
            *super().get_urls(),
        ]

    def _grants_scope(self, request):
        """Grants have row-level security (decision 044): a staff member reads their own in their own context
        (with the organisations they name); a superuser oversees every grant, a read across organisations, as
        the system role. Giving a grant back still writes in its organisation's context."""
        return unscoped_no_tenant() if request.user.is_superuser else person_context(request.user)

    def _in_grants_scope(self, request, view):
        with self._grants_scope(request):
            response = view()
            # Rendered here: the template reads the rows and their organisations.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response

    def changelist_view(self, request, extra_context=None):
        extra = {
            "request_url": reverse("admin:accounts_staffgrant_request"),
            "break_glass_url": reverse("admin:accounts_staffgrant_break_glass") if request.user.is_superuser else None,
            **(extra_context or {}),
        }
        return self._in_grants_scope(request, lambda: super(StaffGrantAdmin, self).changelist_view(request, extra))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self._in_grants_scope(
            request, lambda: super(StaffGrantAdmin, self).change_view(request, object_id, form_url, extra_context)
        )

    def history_view(self, request, object_id, extra_context=None):
        return self._in_grants_scope(
            request, lambda: super(StaffGrantAdmin, self).history_view(request, object_id, extra_context)
        )

    def _form_page(self, request, form, *, title, intro, submit_label):
        return TemplateResponse(
            request,
            "admin/accounts/staffgrant/grant_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "intro": intro,
                "form": form,
                "submit_label": submit_label,
                "opts": self.model._meta,
            },
        )

    def request_view(self, request):
        form = GrantRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                grant = staff_grant_request(
                    organization=data["organization"],
                    staff=request.user,
                    roles=data["roles"],
                    duration=timedelta(hours=data["hours"]),
                    justification=data["justification"],
                    ticket_reference=data["ticket_reference"],
                    requested_by=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                state = (
                    "active now (the customer's policy approves these roles)"
                    if grant.auto_approved
                    else "waiting for the customer's approval"
                )
                messages.success(request, f"Access requested: {state}.")
                return redirect("admin:accounts_staffgrant_changelist")
        return self._form_page(
            request,
            form,
            title="Request access to a customer",
            intro="Ask for the least you need, for as short as you can.",
            submit_label="Request access",
        )

    def break_glass_view(self, request):
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers can break glass.")
        if not has_recent_mfa(request):
            messages.info(request, "Break-glass access needs your second factor again.")
            return reverify_redirect(request)
        form = BreakGlassForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                staff_grant_break_glass(
                    organization=data["organization"],
                    staff=request.user,
                    roles=data["roles"],
                    duration=timedelta(minutes=data["minutes"]),
                    reason=data["reason"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.warning(request, "Break-glass access is open. Security has been alerted.")
                return redirect("admin:accounts_staffgrant_changelist")
        return self._form_page(
            request,
            form,
            title="Break glass",
            intro="Emergency access without the customer's approval: time-boxed, alerted "
            "to security, and shown to the customer.",
            submit_label="Open break-glass access",
        )

    @admin.action(description="Give back (end my access now)")
    def give_back(self, request, queryset):
        ended = 0
        for grant in queryset.filter(
            staff=request.user, status__in=[StaffGrant.Status.ACTIVE, StaffGrant.Status.REQUESTED]
        ):
            staff_grant_revoke(organization=grant.organization, grant_id=grant.pk, actor=request.user, by_staff=True)
            ended += 1
        messages.success(request, f"{ended} grant(s) ended.")
