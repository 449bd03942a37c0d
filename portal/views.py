"""The roof's own pages: the organisation overview and the home redirect."""

from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from accounts.selectors import memberships_for_user
from licensing.selectors.overview import license_overview
from licensing.selectors.seats import organization_subscriptions
from licensing.services.assignments import buy_more_urls

from .selectors import organization_overview


class OverviewView(OrganizationMixin, TemplateView):
    template_name = "dashboard/overview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        subscriptions = organization_subscriptions(self.organization)  # one read for every figure and link below
        licenses = license_overview(self.organization, subscriptions=subscriptions)
        context["overview"] = organization_overview(organization=self.organization,
                                                    pools=[row.sku for row in licenses.pools])
        if self.can(Perm.LICENSES_MANAGE) and licenses.suggestions:
            urls = buy_more_urls(self.organization, {s.pool.sku: s.seats for s in licenses.suggestions},
                                 subscriptions=subscriptions)
            for suggestion in licenses.suggestions:
                suggestion.url = urls.get(suggestion.pool.sku.pk, "")
        context["licenses"] = licenses
        context["can_manage_tenant"] = self.can(Perm.TENANT_MANAGE)
        context["can_buy"] = self.can(Perm.LICENSES_MANAGE)
        context["can_manage_team"] = self.can(Perm.TEAM_MANAGE)
        context["can_view_activity"] = self.can(Perm.AUDIT_VIEW)
        return context


class HomeView(View):
    """Send a signed-in user to their organisation, or to sign-in or sign-up."""

    def get(self, request):
        if not request.user.is_authenticated:
            return redirect("accounts:login")
        slug = request.session.get("current_org")
        memberships = sorted(memberships_for_user(request.user), key=lambda m: m.created_at)
        if not memberships:
            return redirect("accounts:signup_organization")
        chosen = next((m for m in memberships if m.organization.slug == slug), memberships[0])
        return redirect(reverse("dashboard:overview", kwargs={"org_slug": chosen.organization.slug}))
