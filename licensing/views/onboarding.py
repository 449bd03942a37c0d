"""Linking or creating the Microsoft tenant, the agreement and application consent."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.reauth import has_recent_mfa, reverify_redirect
from accounts.roles import Perm
from core.requestid import get_client_ip
from licensing import selectors
from licensing.forms import AgreementForm, TenantCreateForm, TenantLinkForm
from licensing.services import onboarding as onboarding_services
from licensing.tasks import refresh_gdap

from . import actor_of, error_text


class TenantPage(OrganizationMixin, TemplateView):
    template_name = "licensing/tenant.html"

    def get(self, request, *args, **kwargs):
        if request.GET.get("reveal") and not has_recent_mfa(request):
            return reverify_redirect(request)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        org = self.organization
        onboarding = selectors.onboarding_of(org)
        can_manage = self.can(Perm.TENANT_MANAGE)
        # The temporary password is the new tenant's global administrator: only people who manage the
        # tenant see it, and only right after a second-factor check, like other sensitive actions.
        credentials_waiting = can_manage and onboarding is not None and bool(onboarding.initial_admin_password)
        show_credentials = credentials_waiting and has_recent_mfa(self.request)
        return super().get_context_data(
            tenant=selectors.tenant_of(org), onboarding=onboarding, relationships=selectors.gdap_relationships(org),
            agreement=onboarding_services.agreement_current(org), can_manage=can_manage,
            show_credentials=show_credentials,
            credentials_hidden=credentials_waiting and not show_credentials,
            **kwargs,
        )


class _TenantFormView(OrganizationMixin, View):
    permission = Perm.TENANT_MANAGE
    form_class = None
    template_name = ""

    def prepare(self, form):
        return form

    def get(self, request, *args, **kwargs):
        form = self.prepare(self.form_class())
        return render(request, self.template_name, {"form": form, "organization": self.organization})

    def post(self, request, *args, **kwargs):
        form = self.prepare(self.form_class(request.POST))
        if form.is_valid():
            try:
                self.submit(form)
            except ValidationError as exc:
                form.add_error(None, error_text(exc))
            else:
                return redirect("licensing:tenant", org_slug=self.organization.slug)
        return render(request, self.template_name, {"form": form, "organization": self.organization}, status=400)


class TenantCreate(_TenantFormView):
    form_class = TenantCreateForm
    template_name = "licensing/tenant_create.html"

    def prepare(self, form):
        # Live availability while typing: htmx asks the check endpoint and fills #domain-check.
        form.fields["domain_prefix"].widget.attrs.update({
            "hx-get": reverse("licensing:tenant_domain_check", kwargs={"org_slug": self.organization.slug}),
            "hx-trigger": "keyup changed delay:400ms, change", "hx-target": "#domain-check",
            "aria-describedby": "domain-check",
        })
        return form

    def submit(self, form):
        data = form.cleaned_data
        onboarding_services.tenant_create(
            organization=self.organization, actor=actor_of(self.request), user=self.request.user,
            domain_prefix=data["domain_prefix"], company_name=data["company_name"], address=form.address(),
            contact=form.contact(),
        )
        messages.success(self.request, "We asked Microsoft to create your tenant. This page shows the progress.")


class TenantDomainCheck(OrganizationMixin, View):
    """htmx: is <prefix>.onmicrosoft.com free? Answers a small fragment while the person types."""

    permission = Perm.TENANT_MANAGE

    def get(self, request, *args, **kwargs):
        check = onboarding_services.tenant_domain_check(prefix=request.GET.get("domain_prefix", ""))
        return render(request, "licensing/_domain_check.html", {"check": check})


class TenantLink(_TenantFormView):
    form_class = TenantLinkForm
    template_name = "licensing/tenant_link.html"

    def submit(self, form):
        onboarding_services.tenant_link_request(
            organization=self.organization, actor=actor_of(self.request), user=self.request.user,
            tenant_id=form.cleaned_data["tenant_id"], company_name=form.cleaned_data["company_name"],
        )
        messages.success(self.request, "Relationship requested. Approve it in Microsoft with the link below.")


class TenantAgreement(_TenantFormView):
    form_class = AgreementForm
    template_name = "licensing/tenant_agreement.html"

    def get(self, request, *args, **kwargs):
        user = request.user
        first, _, last = (user.full_name or "").partition(" ")
        form = AgreementForm(initial={"first_name": first, "last_name": last, "email": user.email})
        return render(request, self.template_name, {"form": form, "organization": self.organization})

    def submit(self, form):
        data = form.cleaned_data
        onboarding_services.agreement_accept(
            organization=self.organization, actor=actor_of(self.request), user=self.request.user,
            first_name=data["first_name"], last_name=data["last_name"], email=data["email"], phone=data["phone"],
            ip_address=get_client_ip() or "", user_agent=self.request.headers.get("User-Agent", ""),
        )
        messages.success(self.request, "Agreement accepted and sent to Microsoft.")


class TenantConsent(OrganizationMixin, View):
    permission = Perm.TENANT_MANAGE

    def post(self, request, *args, **kwargs):
        try:
            onboarding_services.app_consent_request(organization=self.organization, actor=actor_of(request))
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "Application consent requested.")
        return redirect("licensing:tenant", org_slug=self.organization.slug)


class TenantCredentialsAcknowledge(OrganizationMixin, View):
    permission = Perm.TENANT_MANAGE

    def post(self, request, *args, **kwargs):
        onboarding = selectors.onboarding_of(self.organization)
        if onboarding is not None:
            onboarding_services.credentials_acknowledge(onboarding=onboarding, actor=actor_of(request))
        return redirect("licensing:tenant", org_slug=self.organization.slug)


class TenantRefresh(OrganizationMixin, View):
    """Check the GDAP relationship now instead of waiting for the hourly refresh."""

    permission = Perm.TENANT_MANAGE

    def post(self, request, *args, **kwargs):
        org_id = str(self.organization.pk)
        for relationship in selectors.gdap_relationships(self.organization).exclude(ms_relationship_id=None)[:3]:
            transaction.on_commit(
                lambda pk=str(relationship.pk): refresh_gdap.delay(organization_id=org_id, relationship_id=pk)
            )
        messages.info(request, "Checking the relationship with Microsoft. Reload in a moment.")
        return redirect("licensing:tenant", org_slug=self.organization.slug)
