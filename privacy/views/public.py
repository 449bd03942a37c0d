"""Public privacy pages: they work without an account and without JavaScript."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views import View

from core.audit import Actor
from core.middleware import client_ip
from core.tenancy import privacy_request_context
from privacy import notice, optout_cookie
from privacy.forms import CodeForm, PublicRequestForm
from privacy.models import OptOutMethod, PrivacyRequest
from privacy.services.optouts import opt_out_browser_record, opt_out_user_record
from privacy.services.requests import (
    PrivacyRequestError,
    public_form_admit,
    request_code_send,
    request_submit_public,
    request_verify_code,
)


def officer_contact() -> dict:
    return {
        "name": settings.PRIVACY_OFFICER_NAME,
        "email": settings.PRIVACY_OFFICER_EMAIL,
        "address": settings.PRIVACY_OFFICER_ADDRESS,
    }


class NoticeView(View):
    """The privacy notice in force (stable URL ``/privacy/``), or an earlier version by name."""

    template_name = "privacy/notice.html"

    def get(self, request, version: str | None = None):
        current = notice.current_version()
        if version is None:
            shown = current
        else:
            shown = notice.version_named(version)
            if shown is None or shown not in notice.published_versions():
                raise Http404("No such version of the privacy notice.")
        accepted = ""
        if request.user.is_authenticated:
            accepted = getattr(request.user, "privacy_notice_version", "")
        return render(
            request,
            self.template_name,
            {
                "shown": shown,
                "current": current,
                "is_current": shown == current,
                "versions": notice.published_versions(),
                "officer": officer_contact(),
                "accepted_version": accepted,
            },
        )


def gpc_json(request):
    """``/.well-known/gpc.json`` (GPC spec §support resource): we honour the signal."""
    response = JsonResponse({"gpc": True, "lastUpdate": settings.GPC_LAST_UPDATE})
    response["Access-Control-Allow-Origin"] = "*"
    return response


class ChoicesView(View):
    """Your privacy choices: the opt-out of sale and sharing, by form, with or without an account."""

    template_name = "privacy/choices.html"

    def get(self, request):
        return render(request, self.template_name, self._context(request))

    def post(self, request):
        if request.POST.get("opt_out") != "1":
            return render(request, self.template_name, {**self._context(request), "error": True}, status=400)
        response = redirect("privacy:choices")
        browser = optout_cookie.read(request)
        if browser is None:
            record = opt_out_browser_record(method=OptOutMethod.FORM)
            optout_cookie.write(response, browser_id=record.browser_id, since=record.recorded_at.date(),
                                method=record.method)
        if request.user.is_authenticated:
            opt_out_user_record(user=request.user, method=OptOutMethod.FORM, actor=Actor.user(request.user))
        messages.success(request, "Your opt-out of the sale and sharing of your personal information is recorded.")
        return response

    def _context(self, request):
        return {"opt_out": getattr(request, "privacy_opt_out", None), "officer": officer_contact()}


VERIFY_SALT = "privacy.request-verify"
VERIFY_MAX_AGE = 7 * 24 * 3600


def verify_token(request_id) -> str:
    return signing.dumps(str(request_id), salt=VERIFY_SALT)


class PublicRequestView(View):
    """A privacy request from someone without an account; an emailed code confirms the address."""

    template_name = "privacy/request_public.html"

    def get(self, request):
        return render(request, self.template_name, {"form": PublicRequestForm(), "officer": officer_contact()})

    def post(self, request):
        form = PublicRequestForm(request.POST, request.FILES)
        # Only well-formed submissions count (each one emails a code): a typo costs nothing.
        if form.is_valid() and not public_form_admit(client_ip=client_ip(request)):
            form.add_error(None, "Too many requests from your network in the last hour. Try again later, or "
                                 f"write to {settings.PRIVACY_OFFICER_EMAIL}.")
            return render(request, self.template_name, {"form": form, "officer": officer_contact()}, status=429)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = request_submit_public(
                    email=data["email"], name=data["name"], kind=data["kind"], region=data["region"],
                    details=data["details"], on_behalf=data["on_behalf"], agent_name=data["agent_name"],
                    subject_email=data["subject_email"],
                    authorization=data["document"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                return redirect("privacy:request_verify", token=verify_token(created.pk))
        return render(request, self.template_name, {"form": form, "officer": officer_contact()}, status=400)


class PublicVerifyView(View):
    template_name = "privacy/request_verify.html"

    def dispatch(self, request, *args, **kwargs):
        try:
            self.request_id = signing.loads(kwargs["token"], salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
        except signing.BadSignature as exc:
            raise Http404("This link is not valid or has expired.") from exc
        # The signed link names the request: the page and the code check run in its context (decision 048).
        with privacy_request_context(self.request_id):
            return super().dispatch(request, *args, **kwargs)

    def _request(self, token):
        found = PrivacyRequest.objects.filter(pk=self.request_id, channel=PrivacyRequest.Channel.PUBLIC_FORM).first()
        if found is None:
            raise Http404("This link is not valid or has expired.")
        return found

    def get(self, request, token):
        found = self._request(token)
        return render(request, self.template_name, {"req": found, "form": CodeForm()})

    def post(self, request, token):
        found = self._request(token)
        form = CodeForm(request.POST)
        status = 400
        if request.POST.get("action") == "resend":
            try:
                request_code_send(request_id=found.pk)
            except PrivacyRequestError as exc:
                form = CodeForm()
                form.add_error(None, exc.message)
            else:
                messages.info(request, "We sent a new code. The previous one no longer works.")
                return redirect("privacy:request_verify", token=token)
        elif form.is_valid():
            try:
                found = request_verify_code(request_id=found.pk, code=form.cleaned_data["code"])
            except PrivacyRequestError as exc:
                form.add_error("code", exc.message)
            else:
                status = 200
        found.refresh_from_db()
        return render(request, self.template_name, {"req": found, "form": form}, status=status)
