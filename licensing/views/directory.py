"""Licenses, directory sync, directory users and single assign / unassign."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from core.pagination import ShortPageCountPaginator
from licensing.forms import AssignForm, DirectoryFilterForm
from licensing.forms_directory import OffboardForm
from licensing.models import LicenseAssignment
from licensing.selectors import directory as selectors_directory
from licensing.selectors import directory_actions as selectors_actions
from licensing.selectors import directory_search
from licensing.selectors import seats as selectors_seats
from licensing.selectors import usage as selectors_usage
from licensing.services import assignments as assignment_services
from licensing.services import directory as directory_services
from licensing.services import reassign as reassign_services

from . import PAGE_SIZE, actor_of


class LicensesPage(OrganizationMixin, TemplateView):
    """Seat pools of every SKU with their assignment counts, and the directory sync status. Constant queries."""

    template_name = "licensing/directory/licenses.html"

    def get_context_data(self, **kwargs):
        subscriptions = selectors_seats.organization_subscriptions(self.organization)  # one read for rows and links
        rows = selectors_usage.pool_rows(self.organization, subscriptions=subscriptions)
        can_manage = self.can(Perm.LICENSES_MANAGE)
        if can_manage:
            urls = assignment_services.buy_more_urls(self.organization, {r.sku: max(1, -r.available) for r in rows},
                                                     subscriptions=subscriptions)
            for row in rows:
                row.buy_url = urls.get(row.sku.pk, "")
        return {
            **super().get_context_data(**kwargs),
            "rows": rows,
            "totals": selectors_usage.unassigned_cost_total(rows),
            "sync": selectors_directory.latest_sync(self.organization),
            "can_manage": can_manage,
            "over_assigned": selectors_seats.over_assigned_pools(self.organization, pools=[row.sku for row in rows]),
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
    """Search by part of a name, UPN or e-mail; filter; sort by any column; select rows for a bulk change.
    The search runs over the decrypted in-memory index (licensing.selectors.directory_search)."""

    template_name = "licensing/directory/users.html"

    def get_template_names(self):
        if self.request.htmx and self.request.htmx.target == "users-results":
            return ["licensing/directory/_users_results.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        snapshot = directory_search.directory_snapshot(self.organization)
        form = DirectoryFilterForm(self.request.GET or None, organization=self.organization, facets=snapshot.facets)
        filters = dict(form.cleaned_data) if form.is_valid() else {}
        sort = filters.get("sort") or ""
        found = directory_search.search_entries(self.organization, snapshot=snapshot, **filters)
        page = ShortPageCountPaginator(found, PAGE_SIZE).get_page(self.request.GET.get("page"))
        rows = directory_search.page_rows(self.organization, list(page.object_list))
        headers = [{"key": key, "label": label, "sorted": sort.lstrip("-") == key,
                    "descending": sort.startswith("-"), "next": f"-{key}" if sort == key else key}
                   for key, label in directory_search.SORTS.items()]
        return {**super().get_context_data(**kwargs), "form": form, "page_obj": page, "rows": rows,
                "headers": headers, "sort": sort, "can_manage": self.can(Perm.LICENSES_MANAGE),
                "query": self.request.GET.urlencode(), "skus": form.license_pools}


class DirectoryUserPage(OrganizationMixin, View):
    template_name = "licensing/directory/user_detail.html"

    def get_permission(self) -> str:
        return Perm.LICENSES_MANAGE if self.request.method == "POST" else Perm.VIEW

    def _context(self, user, form):
        return {"directory_user": user, "form": form, "can_manage": self.can(Perm.LICENSES_MANAGE),
                "assignments": selectors_directory.user_assignments(self.organization, user),
                # The account actions panel (views/directory_users.py does the actions).
                "actions": selectors_actions.user_action_state(self.organization, user),
                "offboard_form": OffboardForm()}

    def get(self, request, org_slug, pk):
        user = selectors_directory.directory_user(self.organization, pk)
        form = AssignForm(organization=self.organization, chosen=request.GET.get("sku"), plans_url=request.path)
        return render(request, self.template_name, self._context(user, form))

    def post(self, request, org_slug, pk):
        user = selectors_directory.directory_user(self.organization, pk)
        form = AssignForm(request.POST, organization=self.organization, plans_url=request.path)
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


class DirectoryUserSuggest(OrganizationMixin, View):
    """Up to ten users matching part of a name, UPN or e-mail, as <option>s for a picker's datalist (htmx)."""

    def get(self, request, org_slug):
        query = request.GET.get("q") or request.GET.get("to_user") or ""
        pks = directory_search.search_directory(self.organization, q=query, sort="name")[:10] if query.strip() else []
        return render(request, "licensing/directory/_user_options.html",
                      {"users": directory_search.directory_rows(self.organization, pks)})


class ReassignLicense(OrganizationMixin, View):
    """Move a license from this user to another in one step (the joiner is chosen by search, see users page)."""

    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug, pk):
        assignment = get_object_or_404(LicenseAssignment.objects.for_org(self.organization).select_related("user"),
                                       pk=pk)
        to_user = directory_search.find_user(self.organization, request.POST.get("to_user", ""))
        if to_user is None:
            messages.error(request, "Choose the user who gets the license: pick one from the list, or type their "
                                    "full user principal name or e-mail address.")
        else:
            try:
                joiner = reassign_services.license_reassign(
                    organization=self.organization, assignment=assignment, to_user=to_user,
                    actor=actor_of(request), requested_by=request.user)
            except assignment_services.AssignmentRefused as exc:
                messages.error(request, f"{exc.message} {exc.fix_hint}".strip())
            else:
                messages.success(request, f"{joiner.sku.label} is moving from {assignment.user} to {to_user}. "
                                          "Microsoft applies it in a moment.")
                return redirect("licensing:directory_user", org_slug=org_slug, pk=to_user.pk)
        return redirect("licensing:directory_user", org_slug=org_slug, pk=assignment.user_id)


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
