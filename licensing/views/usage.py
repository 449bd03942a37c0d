"""Usage, inactive users and reclaim, reductions at renewal, the renewal calendar and CSV exports."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from core.csv_export import csv_response
from core.pagination import ShortPageCountPaginator
from licensing import nce
from licensing.forms import ReductionProposeForm
from licensing.selectors import directory as selectors_directory
from licensing.selectors import licensing_settings
from licensing.selectors import usage as selectors_usage
from licensing.services import usage as usage_services
from licensing.services.subscriptions import SubscriptionChangeError

from . import PAGE_SIZE, actor_of, tenant_sku_or_404, well_formed_uuids


class UsagePage(OrganizationMixin, TemplateView):
    template_name = "licensing/usage/usage.html"

    def get_context_data(self, **kwargs):
        days = 90 if self.request.GET.get("days") not in ("30", "365") else int(self.request.GET["days"])
        history = selectors_usage.usage_history(self.organization, days=days)
        rows = selectors_usage.pool_rows(self.organization)
        series = [{"name": h["label"], "points": h["points"]} for h in history]
        return {**super().get_context_data(**kwargs), "rows": rows, "series": series, "days": days,
                "totals": selectors_usage.unassigned_cost_total(rows),
                "proposals": selectors_directory.open_proposals(self.organization),
                "can_manage": self.can(Perm.LICENSES_MANAGE), "is_owner": self.membership.role == "owner"}


class InactivePage(OrganizationMixin, TemplateView):
    template_name = "licensing/usage/inactive.html"

    def get_context_data(self, **kwargs):
        prefs = licensing_settings(self.organization)
        assignments = selectors_usage.inactive_assignments(self.organization, days=prefs.inactive_days)
        page = ShortPageCountPaginator(assignments, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return {**super().get_context_data(**kwargs), "page_obj": page, "days": prefs.inactive_days,
                "can_manage": self.can(Perm.LICENSES_MANAGE)}


class ReclaimLicenses(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        chosen = request.POST.getlist("assignment")
        assignments = selectors_usage.inactive_assignments(self.organization)
        if chosen:
            assignments = assignments.filter(pk__in=well_formed_uuids(chosen))
        jobs = usage_services.licenses_reclaim(organization=self.organization, assignments=list(assignments),
                                               actor=actor_of(request), requested_by=request.user)
        freed = sum(j.change_rows for j in jobs)
        messages.success(request, f"Removing {freed} license(s) from inactive users.")
        if len(jobs) == 1:
            return redirect("licensing:bulk_job", org_slug=org_slug, pk=jobs[0].pk)
        return redirect("licensing:inactive", org_slug=org_slug)


class ReductionPropose(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        sku = tenant_sku_or_404(self.organization, request.POST.get("sku"))
        form = ReductionProposeForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors["reduce_by"]))
            return redirect("licensing:usage", org_slug=org_slug)
        try:
            usage_services.reduction_propose(organization=self.organization, sku=sku,
                                             reduce_by=form.cleaned_data["reduce_by"],
                                             actor=actor_of(request), proposed_by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, "Proposal sent to the owners for approval.")
        return redirect("licensing:usage", org_slug=org_slug)


class ReductionDecide(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug, pk):
        proposal = get_object_or_404(selectors_directory.open_proposals(self.organization), pk=pk)
        try:
            usage_services.reduction_decide(organization=self.organization, proposal=proposal,
                                            approve=request.POST.get("decision") == "approve", actor=actor_of(request),
                                            decided_by=request.user, role=self.membership.role)
        except (PermissionDenied, SubscriptionChangeError) as exc:
            messages.error(request, str(exc))
        return redirect("licensing:usage", org_slug=org_slug)


class RenewalsPage(OrganizationMixin, TemplateView):
    template_name = "licensing/renewals/calendar.html"

    def get_context_data(self, **kwargs):
        now = timezone.now()
        entries = selectors_usage.renewal_calendar(self.organization, now=now)
        return {**super().get_context_data(**kwargs), "months": selectors_usage.calendar_months(entries, now=now),
                "entries": entries, "soon": now + timedelta(days=30)}


class ReportExport(OrganizationMixin, View):
    """CSV of a report: usage, history, inactive, renewals. Rows are produced while the response streams.

    The tenant context ends when the view returns, so each report is materialised into plain tuples
    first (bounded: per SKU, per subscription, or a paginated chunked iterator for users)."""

    def get(self, request, org_slug, report):
        org = self.organization
        if report == "usage":
            header = ["License", "Part number", "Purchased", "Assigned", "Available", "Monthly price", "Currency",
                      "Monthly cost of unassigned"]
            rows = [(r.sku.label, r.sku.sku_part_number, r.purchased, r.assigned, r.available,
                     r.unit_price_monthly or "", r.currency, r.unassigned_cost_monthly or "")
                    for r in selectors_usage.pool_rows(org)]
            return csv_response("license-usage.csv", [header, *rows])
        if report == "history":
            rows = [(h["label"], day, assigned) for h in selectors_usage.usage_history(org, days=365)
                    for day, assigned in h["points"]]
            return csv_response("license-history.csv", [["License", "Day", "Assigned"], *rows])
        if report == "inactive":
            rows = [(a.user.user_principal_name, a.user.display_name, a.sku.label,
                     a.user.last_sign_in_at.isoformat() if a.user.last_sign_in_at else "never")
                    for a in selectors_usage.inactive_assignments(org).iterator(chunk_size=500)]
            return csv_response("inactive-users.csv", [["User principal name", "Name", "License", "Last sign-in"],
                                                       *rows])
        if report == "renewals":
            header = ["Subscription", nce.TERM_ENDS_LABEL, nce.RENEWS_ON_LABEL, nce.LAST_DAY_TO_REDUCE_LABEL,
                      "Cancellation window closes", "Auto-renew", "Seats", "Projected cost", "Currency"]
            rows = [(e.subscription, e.term_ends_on, e.renews_on if e.auto_renew else "", e.last_day_to_reduce,
                     e.window_closes_on,
                     "yes" if e.auto_renew else "no", e.quantity, e.projected_cost, e.currency)
                    for e in selectors_usage.renewal_calendar(org)]
            return csv_response("renewals.csv", [header, *rows])
        raise Http404("Unknown report.")
