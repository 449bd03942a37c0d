"""Team pages: members, invitations, API keys and the organisation's settings (thin: parse, call a service, render)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm, Role

from .api_keys import api_key_create, api_key_revoke
from .invitations import invitation_create, invitation_resend, invitation_revoke
from .models import ApiKey, Membership
from .org_settings import organization_settings_update
from .reauth import RecentMFARequiredMixin, has_recent_mfa, reverify_redirect
from .selectors import api_keys_of_organization, invitation_of_organization, members_of_organization, open_invitations
from .team import TeamError, membership_change_role, membership_leave, membership_remove
from .team_forms import ApiKeyForm, InvitationForm, OrganizationSettingsForm, RoleForm


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


class TeamPageMixin(OrganizationMixin):
    section = "members"

    def team_url(self, name: str, **kwargs) -> str:
        return reverse(f"team:{name}", kwargs={"org_slug": self.organization.slug, **kwargs})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            section=self.section,
            can_manage_team=self.can(Perm.TEAM_MANAGE),
            can_manage_keys=self.can(Perm.API_KEYS_MANAGE),
            can_change_settings=self.can(Perm.ORG_SETTINGS),
        )
        return context


class MembersView(TeamPageMixin, TemplateView):
    template_name = "team/members.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        members = members_of_organization(self.organization)
        context["members"] = members
        context["owner_count"] = sum(1 for member in members if member.role == Role.OWNER)
        context["role_choices"] = Role.choices
        if self.can(Perm.TEAM_MANAGE):
            context["invitations"] = open_invitations(self.organization)
        return context


class MemberRoleView(TeamPageMixin, View):
    permission = Perm.TEAM_MANAGE

    def post(self, request, *args, membership_id, **kwargs):
        if not Membership.objects.filter(organization=self.organization, pk=membership_id).exists():
            raise Http404("No such member.")
        form = RoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a valid role.")
            return redirect(self.team_url("members"))
        role = form.cleaned_data["role"]
        if role == Role.OWNER and not has_recent_mfa(request):
            return reverify_redirect(request)
        try:
            membership = membership_change_role(
                organization=self.organization, membership_id=membership_id, role=role, actor=request.user
            )
        except Membership.DoesNotExist as exc:
            raise Http404("No such member.") from exc
        except TeamError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{membership.user} is now {membership.get_role_display()}.")
        return redirect(self.team_url("members"))


class MemberRemoveView(TeamPageMixin, View):
    permission = Perm.TEAM_MANAGE

    def post(self, request, *args, membership_id, **kwargs):
        try:
            membership_remove(organization=self.organization, membership_id=membership_id, actor=request.user)
        except Membership.DoesNotExist as exc:
            raise Http404("No such member.") from exc
        except TeamError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "The member was removed.")
        return redirect(self.team_url("members"))


class LeaveView(TeamPageMixin, TemplateView):
    template_name = "team/leave.html"

    def post(self, request, *args, **kwargs):
        try:
            membership_leave(organization=self.organization, user=request.user)
        except TeamError as exc:
            messages.error(request, exc.message)
            return redirect(self.team_url("members"))
        if request.session.get("current_org") == self.organization.slug:
            del request.session["current_org"]
        messages.success(request, f"You left {self.organization.display_name}.")
        return redirect("portal:home")


class InvitationCreateView(TeamPageMixin, FormView):
    permission = Perm.TEAM_MANAGE
    template_name = "team/invitation_form.html"
    form_class = InvitationForm

    def form_valid(self, form):
        role = form.cleaned_data["role"]
        if role == Role.OWNER and not has_recent_mfa(self.request):
            messages.info(self.request, "Inviting an owner needs your second factor. Confirm it, then send again.")
            return reverify_redirect(self.request)
        try:
            invitation_create(
                organization=self.organization, email=form.cleaned_data["email"], role=role, actor=self.request.user
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, f"Invitation sent to {form.cleaned_data['email']}.")
        return redirect(self.team_url("members"))


class InvitationActionView(TeamPageMixin, View):
    permission = Perm.TEAM_MANAGE
    service = None
    done_message = ""

    def post(self, request, *args, invitation_id, **kwargs):
        invitation = invitation_of_organization(self.organization, invitation_id)
        if invitation is None:
            raise Http404("No such invitation.")
        if invitation.role == Role.OWNER and not has_recent_mfa(request):
            return reverify_redirect(request)
        try:
            self.service(organization=self.organization, invitation_id=invitation.pk, actor=request.user)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, self.done_message)
        return redirect(self.team_url("members"))


class InvitationResendView(InvitationActionView):
    service = staticmethod(invitation_resend)
    done_message = "A new invitation link was sent. The old link no longer works."


class InvitationRevokeView(InvitationActionView):
    service = staticmethod(invitation_revoke)
    done_message = "The invitation was withdrawn."


class ApiKeyListView(TeamPageMixin, TemplateView):
    permission = Perm.API_KEYS_MANAGE
    template_name = "team/api_keys.html"
    section = "api_keys"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["api_keys"] = api_keys_of_organization(self.organization)
        context["now"] = timezone.now()
        return context


class ApiKeyCreateView(RecentMFARequiredMixin, TeamPageMixin, FormView):
    permission = Perm.API_KEYS_MANAGE
    template_name = "team/api_key_form.html"
    form_class = ApiKeyForm
    section = "api_keys"

    def form_valid(self, form):
        try:
            key, plaintext = api_key_create(
                organization=self.organization,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                expires_at=form.expires_at(),
                actor=self.request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                target = "expires_on" if field == "expires_at" else field
                form.add_error(target if target in form.fields else None, errors)
            return self.form_invalid(form)
        # Rendered in the POST response, never stored: reloading or leaving the page loses the secret for good.
        response = self.response_class(
            request=self.request,
            template=["team/api_key_created.html"],
            context=self.get_context_data(api_key=key, plaintext=plaintext),
        )
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyRevokeView(TeamPageMixin, View):
    permission = Perm.API_KEYS_MANAGE

    def post(self, request, *args, api_key_id, **kwargs):
        try:
            key = api_key_revoke(organization=self.organization, api_key_id=api_key_id, actor=request.user)
        except ApiKey.DoesNotExist as exc:
            raise Http404("No such API key.") from exc
        messages.success(request, f"API key {key.name} ({key.prefix}) was revoked. Requests using it now fail.")
        return redirect(self.team_url("api_keys"))


class OrganizationSettingsView(TeamPageMixin, FormView):
    permission = Perm.ORG_SETTINGS
    template_name = "team/settings.html"
    form_class = OrganizationSettingsForm
    section = "settings"

    def get_initial(self):
        return OrganizationSettingsForm.initial_for(self.organization)

    def form_valid(self, form):
        if form.changes_billing_details() and not has_recent_mfa(self.request):
            messages.info(
                self.request,
                "Changing the tax ID or billing address needs your second factor. Confirm it, then save again.",
            )
            return reverify_redirect(self.request)
        data = form.cleaned_data
        try:
            organization_settings_update(
                organization=self.organization,
                actor=self.request.user,
                legal_name=data["legal_name"],
                business_name=data["business_name"],
                country=data["country"],
                time_zone=data["time_zone"],
                tax_id=data["tax_id"],
                billing_address=form.billing_address(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                target = "address_line1" if field == "billing_address" else field
                form.add_error(target if target in form.fields else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, "Organisation settings saved.")
        return redirect(self.team_url("settings"))
