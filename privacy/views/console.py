"""The privacy officer's console: the request queue against deadlines, and each request's desk.

Staff only, with the privacy-officer permission; anyone else gets 404 (the console's existence
is not advertised). The MFA gate already requires a verified second factor on every page here;
decisions (verify, approve, deny, extend, complete) also need one within the last few minutes.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from accounts.reauth import RecentMFARequiredMixin
from core.crypto import blind_index
from core.csv_export import csv_response
from core.models import FieldLockConflict
from core.tables import Column, Filter, Table
from core.tenancy import person_context, privacy_request_context, tenant_context, unscoped_no_tenant
from licensing.models import DirectoryUser
from licensing.models.directory import MAIL_INDEX, UPN_INDEX
from privacy import deadlines
from privacy.forms import (
    ApproveForm,
    AssignForm,
    AuthorizationForm,
    CorrectionForm,
    NoteForm,
    ReasonForm,
    StaffRequestForm,
)
from privacy.models import REQUESTER_EMAIL_INDEX, AuthorizationDocument, Correction, PrivacyRequest, RecipientNotice
from privacy.selectors import (
    authorization_documents,
    data_inventory,
    is_privacy_officer,
    officer_queue,
    privacy_officers,
    request_history,
    request_organization,
)
from privacy.services import request_decisions as decisions
from privacy.services.authorizations import authorization_document_chunks, authorization_document_downloaded
from privacy.services.corrections import conflict_resolve, correction_apply
from privacy.services.exports import download_token, enqueue_build, export_retry
from privacy.services.recipient_notices import recipient_notice_mark_sent
from privacy.services.requests import (
    PrivacyRequestError,
    request_records_export,
    request_submit_staff,
    request_verify_by_officer,
)

# The queue shows open requests unless asked for closed ones or all.
STATE_CHOICES = [("closed", "Closed"), ("all", "All")]


class OfficerMixin(LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not is_privacy_officer(request.user):
            raise Http404("No such page.")
        if not request.user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)
        # In the officer's own context: staff rows (the assigned officer, the history's actors) are readable only
        # while some context is set (row-level security on users, decision 043). A page of one request (``pk``)
        # runs wholly in that request's context, its services included (row-level security, decision 048).
        with person_context(request.user), privacy_request_context(kwargs.get("pk")):
            return super().dispatch(request, *args, **kwargs)


def _flag(req) -> tuple[str, str] | str:
    if not req.is_open:
        return ""
    flag = deadlines.flag(req.due_date, timezone.now().date())
    return (flag, {"overdue": "Overdue", "at_risk": "At risk"}[flag]) if flag else ""


def _search(queryset, query: str):
    query = query.strip()
    condition = Q(reference__iexact=query)
    if "@" in query:
        condition |= Q(requester_email_index=blind_index(REQUESTER_EMAIL_INDEX, query.lower()))
    return queryset.filter(condition)


def _state(queryset, value: str):
    if value == "closed":
        return queryset.exclude(status__in=PrivacyRequest.OPEN_STATUSES)
    return queryset


def queue_table(request) -> Table:
    return Table(
        request,
        officer_queue(include_closed=request.GET.get("state") in {"closed", "all"}),
        table_id="privacy-queue",
        caption="Privacy requests",
        columns=[
            Column(
                "reference", "Reference", kind="code", link=lambda r: reverse("privacy:console_request", args=[r.pk])
            ),
            Column("kind", "Type", accessor=lambda r: r.get_kind_display()),
            Column("status", "Status", kind="badge", accessor=lambda r: (r.status, r.get_status_display())),
            Column(
                "due_date",
                "Due",
                sortable=True,
                accessor=lambda r: f"{r.due_date:%d %b %Y}",
                order_by=("due_date", "received_at"),
            ),
            Column("flag", "Deadline", kind="badge", accessor=_flag),
            Column("received_at", "Received", sortable=True, kind="datetime"),
            Column(
                "assigned",
                "Assigned to",
                accessor=lambda r: (r.assigned_to.full_name or r.assigned_to.email) if r.assigned_to else "",
            ),
        ],
        filters=[
            Filter("state", "State", STATE_CHOICES, method=_state, empty_label="Open"),
            Filter("kind", "Type", PrivacyRequest.Kind.choices),
            Filter("channel", "Channel", PrivacyRequest.Channel.choices),
        ],
        search=_search,
        search_label="Reference or exact email",
        default_sort="due_date",
        empty_title="No requests",
        empty_message="Nothing waits for you here.",
    )


class QueueView(OfficerMixin, View):
    template_name = "privacy/console/queue.html"

    def get(self, request):
        # Every request, so as the system role (decision 048): the table reads its page while it renders.
        with unscoped_no_tenant():
            table = queue_table(request)
            if getattr(request, "htmx", False) and request.htmx.target == table.region_id:
                return render(request, Table.fragment_template, {"table": table})
            return render(request, self.template_name, {"table": table})


class RequestRecordsCsvView(OfficerMixin, View):
    """Every request record as CSV (no requester identifiers), for the records of processing and the
    yearly request metrics. Audited: who took the records out, and when."""

    def get(self, request):
        rows = request_records_export(actor=request.user)
        return csv_response(f"privacy-requests-{timezone.now():%Y-%m-%d}.csv", rows)


class NewRequestView(OfficerMixin, View):
    template_name = "privacy/console/new.html"

    def get(self, request):
        return render(request, self.template_name, {"form": StaffRequestForm()})

    def post(self, request):
        form = StaffRequestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = request_submit_staff(
                    actor=request.user,
                    email=data["email"],
                    name=data["name"],
                    kind=data["kind"],
                    region=data["region"],
                    details=data["details"],
                    received_at=data["received_on"],
                    on_behalf=data["on_behalf"],
                    agent_name=data["agent_name"],
                    subject_email=data["subject_email"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Request {created.reference} entered and acknowledged.")
                return redirect("privacy:console_request", pk=created.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class RequestDeskView(OfficerMixin, View):
    template_name = "privacy/console/request.html"

    def get(self, request, pk):
        return self.render_desk(request, self.get_request(pk))

    @staticmethod
    def get_request(pk) -> PrivacyRequest:
        found = PrivacyRequest.objects.select_related("assigned_to", "requester").filter(pk=pk).first()
        if found is None:
            raise Http404("No such request.")
        request_organization(found)  # in its own context: organisations have row-level security (decision 044)
        return found

    def render_desk(self, request, req, *, forms=None, error="", status=200):
        forms = forms or {}
        documents = authorization_documents(req.pk)
        today = timezone.now().date()
        dates = deadlines.Deadlines(
            ack_due=req.ack_due,
            response_due=req.response_due,
            extended_due=req.extended_due,
            extend_by=req.extend_by,
            extendable=req.extendable,
        )
        context = {
            "req": req,
            "error": error,
            "job": getattr(req, "export", None),
            "erasure": getattr(req, "erasure", None),
            "notices": req.recipient_notices.order_by("recipient"),
            "token": download_token(req.export)
            if getattr(req, "export", None) and req.export.status == "ready"
            else "",
            "history": request_history(req),
            "flag": _flag(req),
            "extension_refusal": deadlines.can_extend(dates, today=today, already_extended=req.extended_at is not None),
            "assign_form": forms.get("assign")
            or AssignForm(officers=privacy_officers(), initial={"officer": str(request.user.pk)}),
            "note_form": forms.get("note") or NoteForm(),
            "verify_form": forms.get("verify") or NoteForm(prefix="verify"),
            "authorization_form": forms.get("authorization")
            or AuthorizationForm(prefix="authorization", document_on_file=bool(documents)),
            "authorization_documents": documents,
            "approve_form": forms.get("approve") or ApproveForm(prefix="approve"),
            "deny_form": forms.get("deny") or ReasonForm(prefix="deny"),
            "extend_form": forms.get("extend") or ReasonForm(prefix="extend"),
            "complete_form": forms.get("complete") or NoteForm(prefix="complete"),
            "correct_form": forms.get("correct") or CorrectionForm(prefix="correct"),
            "corrections": _corrections(req),
            "conflicts": _open_conflicts(req),
        }
        return render(request, self.template_name, context, status=status)


def _corrections(req):
    """The fields this request corrected, read in its organisation's context, where row-level security and the
    tenant manager show them: a list, because the template renders after the context has ended."""
    if req.organization_id is None:
        return []
    with tenant_context(req.organization_id):
        return list(Correction.objects.for_org(req.organization_id).filter(request_id=req.pk).order_by("created_at"))


def _open_conflicts(req):
    """Syncs refused on this organisation's corrected fields, still open."""
    if req.organization is None or req.kind != PrivacyRequest.Kind.CORRECTION:
        return []
    with tenant_context(req.organization):
        return list(FieldLockConflict.objects.for_org(req.organization).filter(resolved_at__isnull=True))


class _ActionView(OfficerMixin, View):
    """POST one action on one request; on a refusal, the desk again with the message."""

    name = ""
    success = ""
    input_fields: tuple[str, ...] = ()

    def make_form(self, request):
        raise NotImplementedError

    def act(self, request, req, data):
        raise NotImplementedError

    def post(self, request, pk):
        req = RequestDeskView.get_request(pk)
        form = self.make_form(request)
        if form.is_valid():
            try:
                self.act(request, req, form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    # Bad input in one of the form's own fields is that field's error (400); the rest refuse the step.
                    form.add_error(field if field in self.input_fields else None, errors)
            except PrivacyRequestError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, self.success)
                return redirect("privacy:console_request", pk=req.pk)
        req.refresh_from_db()
        # A refused step (409) is shown at the top of the desk too: its form may not be on the page any more.
        refusal = " ".join(form.non_field_errors())
        return RequestDeskView().render_desk(
            request, req, forms={self.name: form}, error=refusal, status=409 if refusal else 400
        )


class AssignView(_ActionView):
    name, success = "assign", "Assigned."

    def make_form(self, request):
        return AssignForm(request.POST, officers=privacy_officers())

    def act(self, request, req, data):
        decisions.request_assign(request_id=req.pk, officer=data["officer"], actor=request.user)


class NoteView(_ActionView):
    name, success = "note", "Note added."

    def make_form(self, request):
        return NoteForm(request.POST)

    def act(self, request, req, data):
        decisions.request_note_add(request_id=req.pk, actor=request.user, note=data["note"])


class VerifyView(RecentMFARequiredMixin, _ActionView):
    name, success = "verify", "Identity verified."

    def make_form(self, request):
        return NoteForm(request.POST, prefix="verify")

    def act(self, request, req, data):
        request_verify_by_officer(request_id=req.pk, actor=request.user, method_note=data["note"])


class AuthorizationView(RecentMFARequiredMixin, _ActionView):
    name, success = "authorization", "Authorisation recorded."
    input_fields = ("document",)

    def make_form(self, request):
        return AuthorizationForm(request.POST, request.FILES, prefix="authorization",
                                 document_on_file=bool(authorization_documents(self.kwargs["pk"])))

    def act(self, request, req, data):
        decisions.request_authorization_record(request_id=req.pk, actor=request.user, note=data["note"],
                                               document=data["document"])


class AuthorizationDocumentView(RecentMFARequiredMixin, OfficerMixin, View):
    """One authorisation document, decrypted, as a download (never shown in the page: a hostile file
    stays inert). Every download is audited."""

    def get(self, request, pk, document_pk):
        req = RequestDeskView.get_request(pk)
        document = get_object_or_404(AuthorizationDocument, pk=document_pk, request=req)
        authorization_document_downloaded(document=document, actor=request.user)
        response = StreamingHttpResponse(authorization_document_chunks(document), content_type=document.content_type)
        extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[document.content_type]
        name = f"authorisation-{req.reference}-{document.pk}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response


class ApproveView(RecentMFARequiredMixin, _ActionView):
    name, success = "approve", "Approved. The requester has been emailed."

    def make_form(self, request):
        return ApproveForm(request.POST, prefix="approve")

    def act(self, request, req, data):
        decisions.request_approve(request_id=req.pk, actor=request.user, note=data.get("note", ""))


class DenyView(RecentMFARequiredMixin, _ActionView):
    name, success = "deny", "Denied. The requester has been emailed the reason."

    def make_form(self, request):
        return ReasonForm(request.POST, prefix="deny")

    def act(self, request, req, data):
        decisions.request_deny(request_id=req.pk, actor=request.user, reason=data["reason"])


class ExtendView(RecentMFARequiredMixin, _ActionView):
    name, success = "extend", "Extended. The requester has been sent the extension notice."

    def make_form(self, request):
        return ReasonForm(request.POST, prefix="extend")

    def act(self, request, req, data):
        decisions.request_extend(request_id=req.pk, actor=request.user, reason=data["reason"])


class CompleteView(RecentMFARequiredMixin, _ActionView):
    name, success = "complete", "Completed. The requester has been emailed."

    def make_form(self, request):
        return NoteForm(request.POST, prefix="complete")

    def act(self, request, req, data):
        decisions.request_complete(request_id=req.pk, actor=request.user, note=data["note"])


class NoticeSentView(RecentMFARequiredMixin, OfficerMixin, View):
    def post(self, request, pk, notice_pk):
        notice = RecipientNotice.objects.filter(pk=notice_pk, request_id=pk).first()
        if notice is None:
            raise Http404("No such notice.")
        recipient_notice_mark_sent(notice_id=notice.pk, actor=request.user)
        messages.success(request, "Notice marked as sent.")
        return redirect("privacy:console_request", pk=pk)


class CorrectView(RecentMFARequiredMixin, _ActionView):
    """Correct a directory user's field for a correction request; the field is then locked against syncs."""

    name, success = "correct", "Corrected. The field is locked against directory syncs."

    def make_form(self, request):
        return CorrectionForm(request.POST, prefix="correct")

    def act(self, request, req, data):
        if req.kind != PrivacyRequest.Kind.CORRECTION or req.organization is None or req.status != "approved":
            raise PrivacyRequestError("not_correctable", "Approve a correction request with an organisation first.")
        person = data["person"].strip()
        with tenant_context(req.organization):
            target = DirectoryUser.objects.for_org(req.organization).filter(
                Q(mail_index=blind_index(MAIL_INDEX, person)) | Q(upn_index=blind_index(UPN_INDEX, person))
            ).first()
        if target is None:
            raise PrivacyRequestError("not_found", "No directory user with that email or sign-in name here.")
        correction_apply(organization=req.organization, model_label="licensing.directoryuser",
                         object_id=target.pk, field_name=data["field"], new_value=data["new_value"],
                         reason=data["reason"], actor=request.user, request=req, restrict=data["restrict"])


class ConflictResolveView(RecentMFARequiredMixin, OfficerMixin, View):
    def post(self, request, pk, conflict_pk):
        req = RequestDeskView.get_request(pk)
        if req.organization is None:
            raise Http404("No such conflict.")
        try:
            conflict_resolve(organization=req.organization, conflict_id=conflict_pk, actor=request.user)
        except FieldLockConflict.DoesNotExist as exc:
            raise Http404("No such conflict.") from exc
        messages.success(request, "Conflict resolved: the corrected value stands.")
        return redirect("privacy:console_request", pk=pk)


class InventoryView(OfficerMixin, View):
    """The data inventory, read from the personal-data registry: every category, where it lives,
    how long it is kept, and who receives it (from the disclosure log's recipients)."""

    template_name = "privacy/console/inventory.html"

    def get(self, request):
        return render(request, self.template_name, {"categories": data_inventory()})


class ExportRetryView(RecentMFARequiredMixin, OfficerMixin, View):
    def post(self, request, pk):
        req = RequestDeskView.get_request(pk)
        job = getattr(req, "export", None)
        if job is None:
            raise Http404("No export for this request.")
        export_retry(job_id=job.pk, actor=request.user, enqueue=enqueue_build)
        messages.success(request, "The file is being prepared again.")
        return redirect("privacy:console_request", pk=pk)
