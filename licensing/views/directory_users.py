"""Directory user actions: create a user, reset a password, block and unblock sign-in, offboard, and the page
that follows each one to its end (timeline, outcome, the temporary password revealed once).

Creating a user, resetting a password and revealing the password need a second-factor check in the last
few minutes (``accounts.reauth``), like the other sensitive actions; all of them need LICENSES_MANAGE.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View

from accounts.org_views import OrganizationMixin
from accounts.reauth import RecentMFARequiredMixin, has_recent_mfa, reverify_redirect
from accounts.roles import Perm
from licensing.forms_directory import CreateUserForm, OffboardForm, ResetPasswordForm
from licensing.selectors import directory as selectors_directory
from licensing.selectors import directory_actions as selectors_actions
from licensing.services.directory import DirectoryNotLinked
from licensing.services.directory import offboard as offboard_services
from licensing.services.directory import passwords as password_services
from licensing.services.directory import users as user_services

from . import actor_of

NOT_LINKED = "Link a Microsoft tenant (and let its setup finish) before managing its users."


def _to_operation(organization, operation):
    return redirect("licensing:directory_action", org_slug=organization.slug, pk=operation.pk)


class DirectoryUserCreate(OrganizationMixin, RecentMFARequiredMixin, View):
    permission = Perm.LICENSES_MANAGE
    template_name = "licensing/directory/user_new.html"

    def _form(self, data=None):
        try:
            domains = user_services.tenant_domains(self.organization)
        except DirectoryNotLinked:
            return None
        # No known domain (a link still being set up): nothing to create a user name in yet.
        return CreateUserForm(data, domains=domains) if domains else None

    def get(self, request, org_slug):
        form = self._form()
        if form is None:
            messages.error(request, NOT_LINKED)
            return redirect("licensing:tenant", org_slug=org_slug)
        return render(request, self.template_name, {"form": form})

    def post(self, request, org_slug):
        form = self._form(request.POST)
        if form is None:
            messages.error(request, NOT_LINKED)
            return redirect("licensing:tenant", org_slug=org_slug)
        if form.is_valid():
            try:
                operation = user_services.directory_user_create(
                    organization=self.organization, actor=actor_of(request), **form.cleaned_data
                )
            except user_services.DirectoryActionRefused as exc:
                form.add_error(exc.field or None, exc.message)
            else:
                messages.success(request, "User requested. This page follows it until Microsoft 365 has created it.")
                return _to_operation(self.organization, operation)
        return render(request, self.template_name, {"form": form}, status=400)


class _UserAction(OrganizationMixin, View):
    """POST one action on a directory user; refusals come back to the user page as a message."""

    permission = Perm.LICENSES_MANAGE
    success_message = ""

    def act(self, request, user):
        raise NotImplementedError

    def post(self, request, org_slug, pk):
        user = selectors_directory.directory_user(self.organization, pk)
        try:
            operation = self.act(request, user)
        except user_services.DirectoryActionRefused as exc:
            messages.error(request, exc.message)
        except DirectoryNotLinked:
            messages.error(request, NOT_LINKED)
        else:
            if operation is not None:
                messages.success(request, self.success_message)
                return _to_operation(self.organization, operation)
        return redirect("licensing:directory_user", org_slug=org_slug, pk=user.pk)


class DirectoryUserResetPassword(_UserAction):
    success_message = "Password reset requested. The temporary password appears here once Microsoft has set it."

    def post(self, request, org_slug, pk):
        # After the role check (OrganizationMixin), like the other sensitive actions' mixin order.
        if not has_recent_mfa(request):
            return reverify_redirect(request)
        return super().post(request, org_slug, pk)

    def act(self, request, user):
        form = ResetPasswordForm(request.POST)
        form.is_valid()
        return user_services.directory_user_password_reset(
            organization=self.organization, user=user, actor=actor_of(request),
            force_change_password=form.cleaned_data.get("force_change_password", False),
        )


class DirectoryUserBlock(_UserAction):
    success_message = "Blocking sign-in requested."

    def act(self, request, user):
        return user_services.directory_user_block(organization=self.organization, user=user, actor=actor_of(request))


class DirectoryUserUnblock(_UserAction):
    success_message = "Unblocking sign-in requested."

    def act(self, request, user):
        return user_services.directory_user_unblock(organization=self.organization, user=user,
                                                    actor=actor_of(request))


class DirectoryUserOffboard(_UserAction):
    success_message = "Offboarding requested. This page follows each step."

    def act(self, request, user):
        form = OffboardForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose what happens to the user's mailbox.")
            return None
        return offboard_services.directory_user_offboard(
            organization=self.organization, user=user, mailbox=form.cleaned_data["mailbox"], actor=actor_of(request),
        )


def render_action_page(request, view, operation, *, password=None, expired=False):
    """The action page of ``operation`` for ``view`` (an OrganizationMixin view), optionally with the password."""
    user = None
    if operation.target_type == "DirectoryUser":
        user = selectors_directory.directory_user(view.organization, operation.target_id)
    response = render(request, "licensing/directory/action.html", {
        "operation": operation, "directory_user": user, "password": password, "expired": expired,
        "action_label": user_services.KIND_LABELS.get(operation.kind, operation.kind),
        "timeline": selectors_actions.action_timeline(operation),
        "outcome": selectors_actions.action_outcome(operation),
        "password_waiting": password_services.password_waiting(operation),
        "may_reveal": view.can(Perm.LICENSES_MANAGE) and password_services.may_reveal(operation, actor_of(request)),
    })
    if password:
        # Shown once: no cache, no back-button copy.
        response["Cache-Control"] = "no-store"
    return response


class DirectoryActionPage(OrganizationMixin, View):
    """One user action followed to its end; polled by htmx while it runs (aria-live region)."""

    def get(self, request, org_slug, pk):
        return render_action_page(request, self, selectors_actions.user_action_operation(self.organization, pk))


class TemporaryPasswordReveal(OrganizationMixin, RecentMFARequiredMixin, View):
    """POST: show the temporary password once, on the action page, and erase it."""

    permission = Perm.LICENSES_MANAGE

    def post(self, request, org_slug, pk):
        operation = selectors_actions.user_action_operation(self.organization, pk)
        try:
            password = password_services.temporary_password_reveal(
                organization=self.organization, operation=operation, actor=actor_of(request)
            )
        except user_services.DirectoryActionRefused as exc:
            messages.error(request, exc.message)
            return _to_operation(self.organization, operation)
        operation.refresh_from_db()
        return render_action_page(request, self, operation, password=password, expired=password is None)
