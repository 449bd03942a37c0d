"""Licenses, directory sync, directory users and single assign / unassign."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from licensing.forms import AssignForm, DirectoryFilterForm
from licensing.models import LicenseAssignment
from licensing.selectors import directory as selectors_directory
from licensing.selectors import seats as selectors_seats
from licensing.selectors import usage as selectors_usage
from licensing.services import assignments as assignment_services
from licensing.services import directory as directory_services

from . import PAGE_SIZE, actor_of


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
            "over_assigned": list(selectors_seats.over_assigned_pools(self.organization)),
        }


class DirectorySyncStart(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug):
        try:
            directory_services.directory_sync_request(
                organization=self.organization, actor=actor_of(request), requested_by=request.user
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
                    organization=self.organization, user=user, sku=form.cleaned_data["sku"], actor=actor_of(request),
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
                                                 actor=actor_of(request), requested_by=request.user)
        except assignment_services.AssignmentRefused as exc:
            messages.error(request, f"{exc.message} {exc.fix_hint}")
        else:
            messages.success(request, "License removal requested.")
        return redirect("licensing:directory_user", org_slug=org_slug, pk=assignment.user_id)
