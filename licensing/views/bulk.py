"""Bulk assign / unassign: upload or selection, dry run, confirm, progress."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from core.pagination import ShortPageCountPaginator
from licensing.forms import BulkUploadForm, DirectoryFilterForm
from licensing.models import BulkJob, BulkJobRow
from licensing.selectors import directory as selectors_directory
from licensing.selectors import directory_search
from licensing.services import assignments as assignment_services
from licensing.services import bulk as bulk_services

from . import PAGE_SIZE, actor_of, tenant_sku_or_404, well_formed_uuids


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
                    upload=form.cleaned_data["file"], actor=actor_of(request), created_by=request.user,
                )
            except bulk_services.BulkInputError as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class BulkFromSelection(OrganizationMixin, View):
    """Preview a bulk job for the rows selected on the users page, or for every user matching its search and
    filters (not just the visible page)."""

    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        form = DirectoryFilterForm(request.POST, organization=self.organization,
                                   facets=directory_search.facets(self.organization))
        target = tenant_sku_or_404(self.organization, request.POST.get("target_sku"))
        action = request.POST.get("action", BulkJob.Action.ASSIGN)
        if not form.is_valid() or action not in BulkJob.Action.values:
            raise Http404("Unknown selection.")
        if request.POST.get("scope", "all") == "selected":
            pks = well_formed_uuids(request.POST.getlist("user"))
            if not pks:
                messages.error(request, "Select at least one user, or choose all matching users.")
                return redirect(f"{reverse('licensing:directory_users', kwargs={'org_slug': org_slug})}"
                                f"?{request.POST.get('query', '')}")
        else:
            pks = directory_search.search_directory(self.organization, **form.cleaned_data)
        users = directory_search.iter_directory_rows(self.organization, pks)
        try:
            job = bulk_services.bulk_preview_selection(
                organization=self.organization, sku=target, action=action, users=users, actor=actor_of(request),
                created_by=request.user,
            )
        except bulk_services.BulkInputError:
            messages.error(request, "No directory users match this selection. Change the search or filters.")
            return redirect("licensing:directory_users", org_slug=org_slug)
        return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)


class BulkJobPage(OrganizationMixin, View):
    """Preview (per-row outcome) before confirming; progress while running. Polled by htmx."""

    template_name = "licensing/directory/bulk_job.html"

    def get_permission(self) -> str:
        return Perm.LICENSES_MANAGE if self.request.method == "POST" else Perm.VIEW

    def get(self, request, org_slug, pk):
        job = selectors_directory.bulk_job(self.organization, pk)
        outcome = request.GET.get("outcome", "")
        rows = BulkJobRow.objects.for_org(self.organization).filter(job=job)
        if outcome in BulkJobRow.Outcome.values:
            rows = rows.filter(outcome=outcome)
        page = ShortPageCountPaginator(rows.order_by("row_number"), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, self.template_name, {
            "job": job, "page_obj": page, "outcome": outcome, "can_manage": self.can(Perm.LICENSES_MANAGE),
            "buy_url": assignment_services.buy_more_url(self.organization, sku=job.sku, seats=job.seats_short),
            "failures": selectors_directory.bulk_failures(self.organization, job),
        })

    def post(self, request, org_slug, pk):
        job = get_object_or_404(BulkJob.objects.for_org(self.organization), pk=pk)
        if request.POST.get("cancel"):
            bulk_services.bulk_job_cancel(organization=self.organization, job=job, actor=actor_of(request))
            messages.info(request, "Bulk job discarded.")
            return redirect("licensing:licenses", org_slug=org_slug)
        try:
            bulk_services.bulk_job_confirm(organization=self.organization, job=job, actor=actor_of(request),
                                           requested_by=request.user)
        except assignment_services.SeatsExhausted as exc:
            messages.error(request, str(exc))
        return redirect("licensing:bulk_job", org_slug=org_slug, pk=job.pk)
