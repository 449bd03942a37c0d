"""Reads for the privacy app."""

from __future__ import annotations

from datetime import UTC

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from accounts.models import Organization, User
from accounts.selectors import organizations_across_tenants, user_by_email
from core.crypto import blind_index
from core.models import Disclosure
from core.registry import Category, Retention, Subject, personal_fields
from core.tenancy import person_context, row_security_hides, tenant_context, tenant_read_context, unscoped_no_tenant
from licensing.models import DirectoryUser
from licensing.models.directory import MAIL_INDEX, UPN_INDEX
from privacy.models import AuthorizationDocument, OptOut, PrivacyRequest


def user_opt_out(user) -> OptOut | None:
    """The signed-in person's own opt-out. Read by the GPC middleware on every signed-in request, outside any
    transaction: one autocommit statement as the system role, keyed by the person (opt-outs have row-level
    security per person), as the session's device is found (decision 035)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    with unscoped_no_tenant(atomic=False):
        return OptOut.objects.filter(user=user).first()


def organization_opt_out(organization) -> OptOut | None:
    if organization is None:
        return None
    return OptOut.objects.filter(organization=organization).first()


def organization_opted_out(organization) -> bool:
    """Whether disclosures about ``organization`` that are not strictly necessary are refused: the
    organisation opted out, or one of its members did (also one who joined after opting out)."""
    if organization is None:
        return False
    held = Q(organization=organization) | Q(user__memberships__organization=organization)
    # The members' opt-outs are theirs (row-level security per person), so all are read as the system role:
    # committed ones. A role that row-level security binds would see none and allow what must be refused, so
    # then every non-essential disclosure is refused instead.
    with unscoped_no_tenant(atomic=False):
        return row_security_hides(OptOut) or OptOut.objects.filter(held).exists()


# --- privacy requests --------------------------------------------------------------------------

OFFICER_PERMISSION = "privacy.work_privacyrequest"


def is_privacy_officer(user) -> bool:
    """Staff with the privacy-officer permission (the "Privacy officers" group grants it)."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
        and user.has_perm(OFFICER_PERMISSION)
    )


def privacy_officers():
    """Active staff who can work requests, for the assignment list."""
    holders = Q(groups__permissions__codename="work_privacyrequest") | Q(
        user_permissions__codename="work_privacyrequest"
    )
    return User.objects.filter(holders | Q(is_superuser=True), is_active=True, is_staff=True).distinct()


def officer_queue(*, include_closed: bool = False):
    """Every request, open ones first by due date; the console filters and pages it. Row-level security shows
    every request to the system role only: the console's queue evaluates it inside ``unscoped_no_tenant()``."""
    queryset = PrivacyRequest.objects.select_related("assigned_to")
    if not include_closed:
        queryset = queryset.filter(status__in=PrivacyRequest.OPEN_STATUSES)
    return queryset.order_by("due_date", "received_at")


def requests_of_user(user):
    """A person's own requests, newest first. Scoped by requester: nobody sees another's."""
    return PrivacyRequest.objects.filter(requester=user).order_by("-received_at")


def request_of_user(user, reference: str) -> PrivacyRequest | None:
    return PrivacyRequest.objects.filter(requester=user, reference=reference).first()


def request_history(request: PrivacyRequest):
    return request.events.select_related("actor").order_by("occurred_at", "created_at")


def authorization_documents(request_id) -> list:
    """A request's authorisation documents, oldest first, with who filed each (an officer, or the agent)."""
    return list(AuthorizationDocument.objects.filter(request_id=request_id).select_related("uploaded_by"))


def data_inventory() -> list[dict]:
    """Per data category: the fields holding it (model, field, subject, retention, shown or described)
    and the recipients the disclosure log has sent it to. Read from the registry: always complete."""
    recipients: dict[str, set[str]] = {}
    labels = dict(Disclosure.Recipient.choices)
    # Every organisation's disclosures (the log has row-level security): read as the system role.
    with unscoped_no_tenant():
        sent = list(Disclosure.objects.values_list("recipient", "categories").distinct())
    for recipient, categories in sent:
        for category in categories:
            recipients.setdefault(category, set()).add(labels.get(recipient, recipient))
    inventory = []
    for category in Category:
        fields = [
            {
                "model": ref.model._meta.verbose_name.capitalize(),
                "label": ref.model._meta.label_lower,
                "field": ref.field_name,
                "subject": Subject(ref.subject).label,
                "retention": Retention(ref.classification.retention).label,
                "verbatim": ref.classification.verbatim,
            }
            for ref in sorted(personal_fields(category=category), key=lambda r: (r.model._meta.label, r.field_name))
        ]
        inventory.append({"category": category.label, "fields": fields,
                          "recipients": sorted(recipients.get(category.value, set()))})
    return inventory


def request_queue_figures(*, today) -> dict | None:
    """Open requests by status and by days left to their current due date (for operators' metrics).

    Counts only: no requester, no reference. Buckets: overdue, due within 7 days, later. Every request's, read as
    the system role (decision 048); None where row-level security binds the role it reads as (no system role):
    no figures rather than false zeros.
    """
    buckets = {"overdue": 0, "within_7_days": 0, "later": 0}
    with unscoped_no_tenant():
        if row_security_hides(PrivacyRequest):
            return None
        open_requests = PrivacyRequest.objects.filter(status__in=PrivacyRequest.OPEN_STATUSES)
        by_status = dict(open_requests.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        dues = list(open_requests.values_list("response_due", "extended_due", "extended_at"))
    for response_due, extended_due, extended_at in dues:
        days_left = ((extended_due if extended_at else response_due) - today).days
        key = "overdue" if days_left < 0 else "within_7_days" if days_left <= 7 else "later"
        buckets[key] += 1
    return {"by_status": by_status, "by_due": buckets}


def request_queue_metrics():
    """Scrape-time metrics for core.metrics (registered in PrivacyConfig.ready()); none when the figures cannot be
    read (see :func:`request_queue_figures`)."""
    figures = request_queue_figures(today=timezone.localdate(timezone.now(), UTC))
    if figures is None:
        return
    by_status = GaugeMetricFamily("portal_privacy_requests_open", "Open privacy requests by status.",
                                  labels=["status"])
    for status in PrivacyRequest.OPEN_STATUSES:
        by_status.add_metric([status], figures["by_status"].get(status, 0))
    yield by_status
    by_due = GaugeMetricFamily("portal_privacy_requests_due", "Open privacy requests by days to their due date.",
                               labels=["due"])
    for bucket, count in figures["by_due"].items():
        by_due.add_metric([bucket], count)
    yield by_due


# --- directory users as data subjects ----------------------------------------------------------


def requester_account(request: PrivacyRequest) -> User | None:
    """The signed-in requester's account, if the request has one. Read in the requester's own context: the
    officer's console has none, and row-level security on users shows no one else's row (decision 043)."""
    if request.requester_id is None:
        return None
    with person_context(request.requester_id):
        return User.objects.filter(pk=request.requester_id).first()


def subject_account(request: PrivacyRequest) -> User | None:
    """Whose account a request is about: the signed-in requester's, or the account with the verified
    address of a public or staff-entered request; for an agent's request, the account of the person
    they act for (never the agent's own)."""
    if request.requester_id is not None and not request.on_behalf:
        return requester_account(request)
    email = request.data_subject_email
    return user_by_email(email)


def request_organization(request: PrivacyRequest) -> Organization | None:
    """The organisation a privacy request names, if any, read in that organisation's context: organisations
    have row-level security (decision 044), and the officer's console and the request's workflows run in
    none. Cached on the request, so its ``organization`` reads it without another query."""
    if request.organization_id is None:
        return None
    with tenant_read_context(request.organization_id):
        request.organization = Organization.objects.get(pk=request.organization_id)
    return request.organization


def directory_subjects(email: str, organization=None) -> list:
    """The directory users (``licensing.DirectoryUser``) a verified email address is: a match on the
    user principal name or the mail address, through their blind indexes, in ``organization`` when the
    request names one, else in every customer's directory (read inside a tenant context covering those
    organisations, so row-level security still applies). Removed users count: we may still hold them."""
    if not email:
        return []
    upn, mail = blind_index(UPN_INDEX, email), blind_index(MAIL_INDEX, email)
    org_ids = [organization.pk] if organization is not None else [o.pk for o in organizations_across_tenants()]
    if not org_ids:
        return []
    with tenant_context(*org_ids):
        return list(
            DirectoryUser.objects.filter(Q(upn_index=upn) | Q(mail_index=mail)).select_related("organization")
            .order_by("organization_id", "pk")
        )


# --- request records (CCPA §7101: kept 24 months; §7102 metrics) ----------------------------------

REQUEST_RECORD_COLUMNS = (
    "reference", "kind", "channel", "status", "region", "regimes", "on_behalf", "received_at", "ack_due",
    "acknowledged_at", "verified_at", "verification", "response_due", "extended_at", "due_date", "decided_at",
    "completed_at", "days_to_complete",
)


def request_record_rows():
    """The request records as CSV rows (header first), oldest first, in batches: the workflow's dates and
    outcomes, no requester identifiers (the reference leads to them in the console)."""
    yield REQUEST_RECORD_COLUMNS
    fields = [c for c in REQUEST_RECORD_COLUMNS if c != "days_to_complete"]
    # Every request's, as the system role (decision 048), in one transaction of its own while the rows stream.
    with unscoped_no_tenant():
        queryset = PrivacyRequest.objects.order_by("received_at", "pk").values_list(*fields)
        for values in queryset.iterator(chunk_size=500):
            row = dict(zip(fields, values, strict=True))
            days = (row["completed_at"] - row["received_at"]).days if row["completed_at"] else ""
            yield [*(_record_cell(row[f]) for f in fields), days]


def _record_cell(value):
    if isinstance(value, list):
        return " ".join(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
