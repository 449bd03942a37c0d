"""Public privacy pages: they work without an account and without JavaScript."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views import View

from privacy import notice


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
