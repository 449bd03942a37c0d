"""The customer's "Reseller access" page: which roles the reseller's staff hold here, for what and until
when; pending requests to approve or deny; revoking at any time; break-glass access shown afterwards;
and the policy for which roles are approved without asking (thin: parse, call accounts.grants, render)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from .grants import (
    staff_access_policy,
    staff_access_policy_update,
    staff_grant_approve,
    staff_grant_deny,
    staff_grant_revoke,
)
from .models import StaffGrant, StaffRole
from .roles import Perm
from .selectors import staff_grants_of_organization
from .team_views import TeamPageMixin


class StaffAccessPolicyForm(forms.Form):
    auto_approve_roles = forms.MultipleChoiceField(
        choices=StaffRole.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Approve these roles without asking",
        help_text="A request for only these roles is active at once; any other waits for an owner here. "
        "Leave all unticked to approve every request yourself.",
    )


def _sorted(grants, now):
    """Pending, in force, break-glass (all, kept visible afterwards) and ended, for the page's sections."""
    pending, current, break_glass, ended = [], [], [], []
    for grant in grants:
        grant.in_force = grant.is_effective(now)
        grant.shown_status = (
            "expired"
            if grant.status in (StaffGrant.Status.ACTIVE, StaffGrant.Status.REQUESTED) and grant.expires_at <= now
            else grant.status
        )
        if grant.break_glass:
            break_glass.append(grant)
        if grant.status == StaffGrant.Status.REQUESTED and grant.expires_at > now:
            pending.append(grant)
        elif grant.status == StaffGrant.Status.ACTIVE and grant.expires_at > now:
            current.append(grant)
        elif not grant.break_glass:
            ended.append(grant)
    return pending, current, break_glass, ended


class ResellerAccessView(TeamPageMixin, TemplateView):
    permission = Perm.ORG_SETTINGS
    template_name = "team/reseller_access.html"
    section = "reseller_access"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        pending, current, break_glass, ended = _sorted(list(staff_grants_of_organization(self.organization)), now)
        context.update(
            pending=pending,
            current=current,
            break_glass=break_glass,
            ended=ended[:50],
            now=now,
            policy_form=kwargs.get("policy_form")
            or StaffAccessPolicyForm(initial={"auto_approve_roles": staff_access_policy(self.organization)}),
        )
        return context


class ResellerAccessPolicyView(TeamPageMixin, View):
    permission = Perm.ORG_SETTINGS
    section = "reseller_access"

    def post(self, request, *args, **kwargs):
        form = StaffAccessPolicyForm(request.POST)
        if not form.is_valid():
            view = ResellerAccessView(request=request, kwargs=kwargs, args=args)
            view.organization, view.membership = self.organization, self.membership
            return view.render_to_response(view.get_context_data(policy_form=form), status=400)
        staff_access_policy_update(
            organization=self.organization,
            actor=request.user,
            auto_approve_roles=form.cleaned_data["auto_approve_roles"],
        )
        messages.success(request, "Reseller access policy saved.")
        return redirect(self.team_url("reseller_access"))


class _GrantActionView(TeamPageMixin, View):
    permission = Perm.ORG_SETTINGS
    service = None
    done = ""

    def post(self, request, *args, grant_id, **kwargs):
        try:
            type(self).service(organization=self.organization, grant_id=grant_id, actor=request.user)
        except StaffGrant.DoesNotExist:
            raise Http404("No such grant.") from None
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, self.done)
        return redirect(self.team_url("reseller_access"))


class GrantApproveView(_GrantActionView):
    service = staticmethod(staff_grant_approve)
    done = "Access approved. It ends on its own at the date shown; you can revoke it earlier."


class GrantDenyView(_GrantActionView):
    service = staticmethod(staff_grant_deny)
    done = "Request denied."


class GrantRevokeView(_GrantActionView):
    service = staticmethod(staff_grant_revoke)
    done = "Access revoked. It stopped immediately."
