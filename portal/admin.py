"""Staff admin for accounts. The site itself (PortalAdminSite, in portal.admin_site) shows nothing
but the OTP sign-in until staff verify a second factor.

Account models are read-only here: changes go through services (audited), and secrets
(password hashes, MFA keys, encrypted billing identifiers) are never displayed. Organisations,
their members and people are shown only through a staff grant to the organisation
(accounts.admin_grants), each read audited with the grant; staff grants are managed in
accounts.admin_staff_grants.
"""

from django.contrib import admin

from accounts import admin_staff_grants  # noqa: F401  (registers the staff grants admin)
from accounts.admin_grants import GrantScopedAdmin
from accounts.models import EMAIL_INDEX, Membership, Organization, User
from core.admin import ReadOnlyAdmin
from core.crypto import blind_index

from .admin_site import PortalAdminSite

__all__ = ["PortalAdminSite"]


@admin.register(User)
class UserAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    """Customers' people: only members of organisations a grant covers (reseller staff are not listed)."""

    grant_area = "accounts"
    grant_org_field = "memberships__organization"
    list_display = ["email", "full_name", "is_active", "is_staff", "email_verified_at", "date_joined"]
    list_filter = ["is_active", "is_staff"]
    fields = [
        "email",
        "full_name",
        "job_title",
        "email_verified_at",
        "is_active",
        "is_staff",
        "date_joined",
        "last_login",
    ]
    search_help_text = "Exact email address (emails are encrypted, so partial matches are not possible)."
    search_fields = ["email_index"]
    ordering = ["-date_joined"]

    def grant_filter(self, queryset, org_ids):
        # A subquery, not a join: a person in two granted organisations is listed once.
        return queryset.filter(pk__in=Membership.objects.filter(organization_id__in=list(org_ids)).values("user_id"))

    def get_search_results(self, request, queryset, search_term):
        if not search_term:
            return queryset, False
        return queryset.filter(email_index=blind_index(EMAIL_INDEX, search_term)), False


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    grant_area = "accounts"
    grant_org_field = "pk"
    list_display = ["legal_name", "business_name", "slug", "country", "status", "created_at"]
    list_filter = ["status", "country"]
    # Names are encrypted, so the search matches the slug (neutral since decision 041: ask the customer for it).
    search_fields = ["slug"]
    search_help_text = "Part of the organisation's slug (names are encrypted and cannot be searched)."
    fields = ["legal_name", "business_name", "slug", "country", "time_zone", "status", "created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    grant_area = "accounts"
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "organization"]
    fields = ["user", "organization", "role", "created_at"]
