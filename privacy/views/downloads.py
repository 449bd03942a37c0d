"""Download of a ready export: a signed link that expires, for the requester or an officer,
after a recent second-factor check. The file is decrypted as it streams and never cached."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, StreamingHttpResponse
from django.views import View

from accounts.reauth import RecentMFARequiredMixin
from core.audit import Actor
from core.tenancy import privacy_request_context
from privacy.selectors import is_privacy_officer
from privacy.services.exports import export_chunks, job_from_token


class ExportDownloadView(LoginRequiredMixin, RecentMFARequiredMixin, View):
    def get(self, request, token: str):
        job = job_from_token(token)
        if job is None:
            raise Http404("This link is not valid or has expired.")
        # The job names its request: read in the request's context (decision 048).
        with privacy_request_context(job.request_id):
            return self._download(request, job)

    def _download(self, request, job):
        officer = is_privacy_officer(request.user)
        if not officer and job.request.requester_id != request.user.pk:
            raise Http404("This link is not valid or has expired.")
        actor = Actor.staff(request.user) if officer else Actor.user(request.user)
        try:
            chunks = export_chunks(job=job, actor=actor)
        except FileNotFoundError as exc:
            raise Http404("This export has expired and was deleted.") from exc
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{job.request.reference}.zip"'
        response["Cache-Control"] = "no-store"
        return response
