"""Public privacy pages: they work without an account and without JavaScript."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views import View

from core.audit import Actor
from privacy import notice, optout_cookie
from privacy.models import OptOutMethod
from privacy.services.optouts import opt_out_browser_record, opt_out_user_record


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
