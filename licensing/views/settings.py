"""The one licensing settings page: owner approval of orders, inactivity, reminders and e-mail."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import RedirectView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from licensing.forms import LicensingSettingsForm
from licensing.selectors import licensing_settings
from licensing.services.settings import licensing_settings_update

from . import actor_of


class LicensingSettingsPage(OrganizationMixin, View):
    """License admins change the reporting settings; only members with ORG_SETTINGS the approval rule."""

    permission = Perm.LICENSES_MANAGE
    template_name = "licensing/settings.html"

    def _form(self, data=None) -> LicensingSettingsForm:
        current = licensing_settings(self.organization)
        return LicensingSettingsForm(data, initial=LicensingSettingsForm.initial_from(current),
                                     approval=self.can(Perm.ORG_SETTINGS))

    def get(self, request, *args, **kwargs):
        return render(request, self.template_name, {"form": self._form()})

    def post(self, request, *args, **kwargs):
        form = self._form(request.POST)
        if form.is_valid():
            try:
                licensing_settings_update(organization=self.organization, actor=actor_of(request),
                                          changes=form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Licensing settings saved.")
                return redirect("licensing:licensing_settings", org_slug=self.organization.slug)
        return render(request, self.template_name, {"form": form}, status=400)


class ReportingPreferencesRedirect(OrganizationMixin, RedirectView):
    """The former usage preferences page (``licensing:reporting_preferences``): its settings moved."""

    permission = Perm.LICENSES_MANAGE
    pattern_name = "licensing:licensing_settings"
