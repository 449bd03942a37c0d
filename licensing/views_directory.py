"""Dashboard pages: licenses (seat pools), directory users, assignment, bulk jobs, usage, renewals, notifications.

Thin: parse input, call a service or selector, render. Every page runs in the tenant context set
by ``OrganizationMixin``; objects are fetched through ``for_org`` so another tenant's id is a 404.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from licensing import selectors_directory, selectors_usage
from licensing.models import BulkJob, BulkJobRow, LicenseAssignment, Notification, TenantSku
from licensing.services import assignments as assignment_services
from licensing.services import bulk as bulk_services
from licensing.services import directory as directory_services
from licensing.services import notifications as notification_services
from licensing.services import usage as usage_services
from licensing.services.subscriptions import SubscriptionChangeError
from portal.csv_export import csv_response
from portal.roles import Perm
from portal.views import OrganizationMixin
from security.audit import Actor

PAGE_SIZE = 50


def _actor(request) -> Actor:
    return Actor.user(request.user)


def _uuids(values) -> list[uuid.UUID]:
    """The well-formed ids among posted values: a tampered id is simply not found, never a 500."""
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return valid


def _tenant_sku_or_404(organization, value) -> TenantSku:
    found = _uuids([value]) if value else []
    return get_object_or_404(TenantSku.objects.for_org(organization), pk=found[0] if found else None)


class LicensesPage(OrganizationMixin, TemplateView):
    """Seat pools of every SKU with their assignment counts, and the directory sync status. Constant queries."""

    template_name = "licensing/directory/licenses.html"

    def get_context_data(self, **kwargs):
        rows = selectors_usage.pool_rows(self.organization)
        can_manage = self.can(Perm.LICENSES_MANAGE)
        if can_manage:
            urls = assignment_services.buy_more_urls(self.organization, {r.sku: max(1, -r.available) for r in rows})
            for row in rows:
                row.buy_url = urls.get(row.sku.pk, "")
        return {
            **super().get_context_data(**kwargs),
            "rows": rows,
            "totals": selectors_usage.unassigned_cost_total(rows),
            "sync": selectors_directory.latest_sync(self.organization),
            "can_manage": can_manage,
        }


class DirectorySyncStart(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        try:
            directory_services.directory_sync_request(
                organization=self.organization, actor=_actor(request), requested_by=request.user
            )
        except directory_services.DirectoryNotLinked as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Directory sync started. The page shows its progress.")
        return redirect("licensing:licenses", org_slug=org_slug)


class DirectorySyncStatus(OrganizationMixin, TemplateView):
    """The sync progress fragment, polled by htmx while a sync runs."""

    template_name = "licensing/directory/_sync_status.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "sync": selectors_directory.latest_sync(self.organization),
                "can_manage": self.can(Perm.LICENSES_MANAGE)}


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Exact UPN or e-mail", max_length=320)
    sku = forms.ModelChoiceField(queryset=TenantSku.objects.none(), required=False, label="License",
                                 empty_label="Any license")
    status = forms.ChoiceField(required=False, label="Show", choices=[
        ("", "Everyone"), ("licensed", "With a license"), ("unlicensed", "Without a license"),
        ("inactive", "Licensed but inactive"), ("no_location", "Missing usage location"), ("failed", "Failed"),
    ])

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class DirectoryUsersPage(OrganizationMixin, TemplateView):
    template_name = "licensing/directory/users.html"

    def get_context_data(self, **kwargs):
        form = DirectoryFilterForm(self.request.GET or None, organization=self.organization)
        filters = form.cleaned_data if form.is_valid() else {}
        users = selectors_directory.directory_users(self.organization, **filters)
        page = Paginator(users, PAGE_SIZE).get_page(self.request.GET.get("page"))
        selectors_directory.attach_assignments(self.organization, page.object_list)
        return {**super().get_context_data(**kwargs), "form": form, "page_obj": page,
                "can_manage": self.can(Perm.LICENSES_MANAGE), "query": self.request.GET.urlencode()}


class AssignForm(forms.Form):
    sku = forms.ModelChoiceField(queryset=TenantSku.objects.none(), label="License")
    disabled_plans = forms.MultipleChoiceField(required=False, label="Turn off these services",
                                               widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        skus = TenantSku.objects.for_org(organization)
        self.fields["sku"].queryset = skus
        self.fields["disabled_plans"].choices = sorted(
            {(p["id"], p["name"]) for sku in skus for p in sku.service_plans if p.get("id")}, key=lambda c: c[1]
        )


class DirectoryUserPage(OrganizationMixin, View):
    template_name = "licensing/directory/user_detail.html"

    def get_permission(self) -> str:
        return Perm.LICENSES_MANAGE if self.request.method == "POST" else Perm.VIEW

    def _context(self, user, form):
        return {"directory_user": user, "form": form, "can_manage": self.can(Perm.LICENSES_MANAGE),
                "assignments": selectors_directory.user_assignments(self.organization, user)}

    def get(self, request, org_slug, pk):
        user = selectors_directory.directory_user(self.organization, pk)
        return render(request, self.template_name,
                      self._context(user, AssignForm(organization=self.organization)))

    def post(self, request, org_slug, pk):
        user = selectors_directory.directory_user(self.organization, pk)
        form = AssignForm(request.POST, organization=self.organization)
        if form.is_valid():
            try:
                assignment_services.license_assign(
                    organization=self.organization, user=user, sku=form.cleaned_data["sku"], actor=_actor(request),
                    disabled_plans=form.cleaned_data["disabled_plans"], requested_by=request.user,
                )
            except assignment_services.SeatsExhausted as exc:
                form.add_error(None, str(exc))
                return render(request, self.template_name, {**self._context(user, form), "exhausted": exc,
                                                            "buy_url": exc.buy_url(self.organization)}, status=409)
            except assignment_services.AssignmentRefused as exc:
                form.add_error(None, f"{exc.message} {exc.fix_hint}")
            except ValidationError as exc:
                form.add_error("disabled_plans", exc.messages)
            else:
                messages.success(request, "License requested. It is assigned in Microsoft 365 in a moment.")
                return redirect("licensing:directory_user", org_slug=org_slug, pk=user.pk)
        return render(request, self.template_name, self._context(user, form), status=400)


class UnassignLicense(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug, pk):
        assignment = get_object_or_404(LicenseAssignment.objects.for_org(self.organization), pk=pk)
        try:
            assignment_services.license_unassign(organization=self.organization, assignment=assignment,
                                                 actor=_actor(request), requested_by=request.user)
        except assignment_services.AssignmentRefused as exc:
            messages.error(request, f"{exc.message} {exc.fix_hint}")
        else:
            messages.success(request, "License removal requested.")
        return redirect("licensing:directory_user", org_slug=org_slug, pk=assignment.user_id)


# --- bulk ---------------------------------------------------------------------------------------------


class BulkUploadForm(forms.Form):
    sku = forms.ModelChoiceField(queryset=TenantSku.objects.none(), label="License")
    action = forms.ChoiceField(choices=BulkJob.Action.choices, initial=BulkJob.Action.ASSIGN)
    file = forms.FileField(label="CSV file", help_text="One user principal name or e-mail address per row, in the "
                                                       "first column. A header row is optional. No size limit of 20.")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class BulkNew(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE
    template_name = "licensing/directory/bulk_new.html"

    def get(self, request, org_slug):
        return render(request, self.template_name, {"form": BulkUploadForm(organization=self.organization)})

    def post(self, request, org_slug):
        form = BulkUploadForm(request.POST, request.FILES, organization=self.organization)
        if form.is_valid():
            try:
                job = bulk_services.bulk_preview_csv(
                    organization=self.organization, sku=form.cleaned_data["sku"], action=form.cleaned_data["action"],
                    upload=form.cleaned_data["file"], actor=_actor(request), created_by=request.user,
                )
            except bulk_services.BulkInputError as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class BulkFromSelection(OrganizationMixin, View):
    """Preview a bulk job for every user matching the directory filters (not just the visible page)."""

    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        form = DirectoryFilterForm(request.POST, organization=self.organization)
        target = _tenant_sku_or_404(self.organization, request.POST.get("target_sku"))
        action = request.POST.get("action", BulkJob.Action.ASSIGN)
        if not form.is_valid() or action not in BulkJob.Action.values:
            raise Http404("Unknown selection.")
        users = selectors_directory.directory_users(self.organization, **form.cleaned_data).iterator(chunk_size=1000)
        job = bulk_services.bulk_preview_selection(
            organization=self.organization, sku=target, action=action, users=users, actor=_actor(request),
            created_by=request.user,
        )
        return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)


class BulkJobPage(OrganizationMixin, View):
    """Preview (per-row outcome) before confirming; progress while running. Polled by htmx."""

    template_name = "licensing/directory/bulk_job.html"

    def get_permission(self) -> str:
        return Perm.LICENSES_MANAGE if self.request.method == "POST" else Perm.VIEW

    def _job(self, pk) -> BulkJob:
        job = get_object_or_404(BulkJob.objects.for_org(self.organization).select_related("sku"), pk=pk)
        return assignment_services.bulk_job_refresh(job=job)

    def get(self, request, org_slug, pk):
        job = self._job(pk)
        outcome = request.GET.get("outcome", "")
        rows = BulkJobRow.objects.for_org(self.organization).filter(job=job)
        if outcome in BulkJobRow.Outcome.values:
            rows = rows.filter(outcome=outcome)
        page = Paginator(rows.order_by("row_number"), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, self.template_name, {
            "job": job, "page_obj": page, "outcome": outcome, "can_manage": self.can(Perm.LICENSES_MANAGE),
            "buy_url": assignment_services.buy_more_url(self.organization, sku=job.sku, seats=job.seats_short),
            "failures": selectors_directory.bulk_failures(self.organization, job),
        })

    def post(self, request, org_slug, pk):
        job = self._job(pk)
        if request.POST.get("cancel"):
            bulk_services.bulk_job_cancel(organization=self.organization, job=job, actor=_actor(request))
            messages.info(request, "Bulk job discarded.")
            return redirect("licensing:licenses", org_slug=org_slug)
        try:
            bulk_services.bulk_job_confirm(organization=self.organization, job=job, actor=_actor(request),
                                           requested_by=request.user)
        except assignment_services.SeatsExhausted as exc:
            messages.error(request, str(exc))
        return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)


# --- usage, inactive users, renewals -----------------------------------------------------------------------


class UsagePage(OrganizationMixin, TemplateView):
    template_name = "licensing/usage/usage.html"

    def get_context_data(self, **kwargs):
        days = 90 if self.request.GET.get("days") not in ("30", "365") else int(self.request.GET["days"])
        history = selectors_usage.usage_history(self.organization, days=days)
        rows = selectors_usage.pool_rows(self.organization)
        series = [{"name": h["sku"].label, "points": h["points"]} for h in history]
        return {**super().get_context_data(**kwargs), "rows": rows, "series": series, "days": days,
                "totals": selectors_usage.unassigned_cost_total(rows),
                "preferences": selectors_usage.preferences(self.organization),
                "proposals": selectors_directory.open_proposals(self.organization),
                "can_manage": self.can(Perm.LICENSES_MANAGE), "is_owner": self.membership.role == "owner"}


class InactivePage(OrganizationMixin, TemplateView):
    template_name = "licensing/usage/inactive.html"

    def get_context_data(self, **kwargs):
        prefs = selectors_usage.preferences(self.organization)
        assignments = selectors_usage.inactive_assignments(self.organization, days=prefs.inactive_days)
        page = Paginator(assignments, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return {**super().get_context_data(**kwargs), "page_obj": page, "days": prefs.inactive_days,
                "can_manage": self.can(Perm.LICENSES_MANAGE)}


class ReclaimLicenses(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        chosen = request.POST.getlist("assignment")
        assignments = selectors_usage.inactive_assignments(self.organization)
        if chosen:
            assignments = assignments.filter(pk__in=_uuids(chosen))
        jobs = usage_services.licenses_reclaim(organization=self.organization, assignments=list(assignments),
                                               actor=_actor(request), requested_by=request.user)
        freed = sum(j.change_rows for j in jobs)
        messages.success(request, f"Removing {freed} license(s) from inactive users.")
        if len(jobs) == 1:
            return redirect("licensing:bulk_job", org_slug=org_slug, pk=jobs[0].pk)
        return redirect("licensing:inactive", org_slug=org_slug)


class ReductionPropose(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        sku = _tenant_sku_or_404(self.organization, request.POST.get("sku"))
        try:
            usage_services.reduction_propose(organization=self.organization, sku=sku,
                                             reduce_by=int(request.POST.get("reduce_by", "0") or 0),
                                             actor=_actor(request), proposed_by=request.user)
        except (ValidationError, ValueError) as exc:
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
                                            approve=request.POST.get("decision") == "approve", actor=_actor(request),
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


class PreferencesForm(forms.Form):
    inactive_days = forms.IntegerField(min_value=1, max_value=365, label="Inactive after (days)")
    reminder_offsets = forms.CharField(label="Renewal reminders (days before)", help_text="For example: 30, 7, 1")
    email_notifications = forms.BooleanField(required=False, label="Also send notifications by e-mail")

    def clean_reminder_offsets(self):
        try:
            return [int(p) for p in self.cleaned_data["reminder_offsets"].replace(" ", "").split(",") if p]
        except ValueError:
            raise ValidationError("Use whole numbers separated by commas.") from None


class PreferencesPage(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE
    template_name = "licensing/usage/preferences.html"

    def get(self, request, org_slug):
        prefs = selectors_usage.preferences(self.organization)
        form = PreferencesForm(initial={"inactive_days": prefs.inactive_days, "email_notifications":
                                        prefs.email_notifications,
                                        "reminder_offsets": ", ".join(map(str, prefs.reminder_offsets))})
        return render(request, self.template_name, {"form": form})

    def post(self, request, org_slug):
        form = PreferencesForm(request.POST)
        if form.is_valid():
            try:
                usage_services.reporting_preferences_update(organization=self.organization, actor=_actor(request),
                                                            **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Preferences saved.")
                return redirect("licensing:usage", org_slug=org_slug)
        return render(request, self.template_name, {"form": form}, status=400)


# --- CSV exports (streamed) ------------------------------------------------------------------------------


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
            rows = [(h["sku"].label, day, assigned) for h in selectors_usage.usage_history(org, days=365)
                    for day, assigned in h["points"]]
            return csv_response("license-history.csv", [["License", "Day", "Assigned"], *rows])
        if report == "inactive":
            rows = [(a.user.user_principal_name, a.user.display_name, a.sku.label,
                     a.user.last_sign_in_at.isoformat() if a.user.last_sign_in_at else "never")
                    for a in selectors_usage.inactive_assignments(org).iterator(chunk_size=500)]
            return csv_response("inactive-users.csv", [["User principal name", "Name", "License", "Last sign-in"],
                                                       *rows])
        if report == "renewals":
            header = ["Subscription", "Renews on", "Last day to reduce", "Cancellation window closes", "Auto-renew",
                      "Seats", "Projected cost", "Currency"]
            rows = [(e.subscription, e.renews_on, e.last_day_to_reduce, e.window_closes_on,
                     "yes" if e.auto_renew else "no", e.quantity, e.projected_cost, e.currency)
                    for e in selectors_usage.renewal_calendar(org)]
            return csv_response("renewals.csv", [header, *rows])
        raise Http404("Unknown report.")


# --- notifications ------------------------------------------------------------------------------------------


class NotificationsPage(OrganizationMixin, TemplateView):
    template_name = "licensing/notifications/list.html"

    def get_context_data(self, **kwargs):
        notes = Notification.objects.for_org(self.organization).filter(recipient=self.request.user)
        page = Paginator(notes, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return {**super().get_context_data(**kwargs), "page_obj": page,
                "announcements": selectors_directory.announcements(self.organization)}


class NotificationsMarkRead(OrganizationMixin, View):
    def post(self, request, org_slug):
        posted = request.POST.getlist("notification")
        ids = _uuids(posted) if posted else None
        notification_services.notifications_mark_read(organization=self.organization, user=request.user,
                                                      notification_ids=ids)
        if request.htmx:
            return render(request, "licensing/notifications/_bell.html",
                          selectors_directory.bell_context(self.organization, request.user))
        return redirect(reverse("licensing:notifications", kwargs={"org_slug": org_slug}))


class NotificationsBell(OrganizationMixin, TemplateView):
    template_name = "licensing/notifications/_bell.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs),
                **selectors_directory.bell_context(self.organization, self.request.user)}

