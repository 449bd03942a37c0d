"""The signed-in person's privacy page: their opt-out, their requests, and a new request (recent MFA)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from accounts.reauth import RecentMFARequiredMixin, has_recent_mfa
from accounts.selectors import memberships_for_user
from core.tenancy import person_context
from privacy.forms import PortalRequestForm
from privacy.models import Erasure, ExportJob, PrivacyRequestEvent
from privacy.selectors import request_history, request_of_user, requests_of_user
from privacy.services.erasure import erasure_cancel
from privacy.services.exports import download_token
from privacy.services.requests import PrivacyRequestError, request_submit_portal


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class OwnRequestsMixin(LoginRequiredMixin):
    """The page runs in the signed-in person's own context, where row-level security shows their privacy requests,
    their history and documents, and nobody else's (decision 048)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)
        with person_context(request.user):
            return super().dispatch(request, *args, **kwargs)


class MyDataView(OwnRequestsMixin, View):
    template_name = "privacy/my_data.html"

    def get(self, request):
        return render(
            request,
            self.template_name,
            {"requests": requests_of_user(request.user)[:50], "opt_out": getattr(request, "privacy_opt_out", None)},
        )


class MyRequestNewView(LoginRequiredMixin, RecentMFARequiredMixin, View):
    template_name = "privacy/my_request_new.html"

    def _organizations(self, request):
        # The person's active organisations, in a stable order (names are encrypted; slugs neutral: decision 041).
        return [membership.organization for membership in memberships_for_user(request.user)]

    def get(self, request):
        form = PortalRequestForm(organizations=self._organizations(request))
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = PortalRequestForm(request.POST, organizations=self._organizations(request))
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = request_submit_portal(
                    user=request.user,
                    kind=data["kind"],
                    region=data["region"],
                    details=data["details"],
                    organization=data["organization"],
                    recent_mfa=has_recent_mfa(request),
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            except PrivacyRequestError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Request {created.reference} received. We emailed you a confirmation.")
                return redirect("privacy:my_request", reference=created.reference)
        return render(request, self.template_name, {"form": form}, status=400)


class MyRequestView(OwnRequestsMixin, View):
    template_name = "privacy/my_request.html"

    def get(self, request, reference: str):
        found = request_of_user(request.user, reference)
        if found is None:
            raise Http404("No such request.")
        # Officers' internal notes stay in the console.
        history = request_history(found).exclude(action=PrivacyRequestEvent.Action.NOTE)
        job = ExportJob.objects.filter(request=found).first()
        token = download_token(job) if job is not None and job.status == ExportJob.Status.READY else ""
        erasure = Erasure.objects.filter(request=found).first()
        return render(
            request,
            self.template_name,
            {"req": found, "history": history, "job": job, "token": token, "erasure": erasure},
        )


class CancelDeletionView(OwnRequestsMixin, RecentMFARequiredMixin, View):
    def post(self, request, reference: str):
        found = request_of_user(request.user, reference)
        if found is None:
            raise Http404("No such request.")
        try:
            erasure_cancel(request_id=found.pk, user=request.user)
        except PrivacyRequestError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Deletion cancelled. Nothing was deleted.")
        return redirect("privacy:my_request", reference=reference)
