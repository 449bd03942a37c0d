"""Erasure of a portal user, driven by the personal-data registry, with crypto-shredding.

When a deletion request is approved, :func:`erasure_schedule` sets a grace period
(``PRIVACY_ERASURE_GRACE_DAYS``) during which the requester can cancel (:func:`erasure_cancel`).
Afterwards :func:`erasure_perform` (the beat task ``privacy.run_due_erasures``) applies the plan:

- every model the registry declares for the portal-user subject is either erased or kept by its
  retention class: rows whose personal fields are all kept only "while the account exists" are
  deleted; rows under a longer class (security log, the legal and tax period, privacy records) are
  kept and listed with the reason and the period (GDPR Art. 17(3)(b)/(e), CCPA §1798.105(d));
- the account row itself stays (audit events and invoices point at it) but is anonymised: its data
  keys are destroyed first, so the real name and email in every copy, backups included, can never
  be decrypted again, and its blind index now indexes only the placeholder address;
- every recipient the disclosure log names for the person's organisations is sent a notice
  (GDPR Art. 19, ``privacy.services.recipient_notices``);
- the requester is told what was erased and what was kept and why.

A person under a legal hold (their own or their organisation's) waits until it is released.
Running it again is a no-op: the erasure is done.

A verified address with no portal account may be a directory user in customers' directories
(``privacy.selectors.directory_subjects``): their erasure unassigns their licenses through the
outbox first and erases once Microsoft confirmed (``privacy.services.directory_erasure``), in two
runs of the same beat task. An address with an account erases the account only: unassigning an
employee's Microsoft 365 licenses is not what a customer admin closing a portal account asks for.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.audit import Actor
from core.crypto import KeyScope
from core.keys import data_key_destroy
from core.models import Disclosure
from core.registry import Retention, Subject, declared_models
from core.tenancy import TENANCY_TABLES, TenantManager, person_context, privacy_request_context, tenant_context
from privacy.access_report import user_organizations
from privacy.models import Erasure, PrivacyRequest, RecipientNotice
from privacy.selectors import directory_subjects, request_organization, subject_account
from privacy.services import directory_erasure, retention
from privacy.services.history import history_add, history_audit, in_request_context, request_locked
from privacy.services.notices import request_email_send
from privacy.services.recipient_notices import recipient_notices_open
from privacy.services.requests import Action, PrivacyRequestError, Status

# Why each retention class survives an erasure request.
KEPT_BECAUSE = {
    Retention.SECURITY_LOG: "Kept for security monitoring and investigating incidents (GDPR Art. 17(3)(e), "
    "CCPA §1798.105(d)(2)), then deleted",
    Retention.TECHNICAL_LOG: "Kept for operating and securing the service, then deleted",
    Retention.ACTIVE_PLUS_LEGAL: "Kept for legal, tax and Microsoft partner-audit obligations (GDPR Art. "
    "17(3)(b), CCPA §1798.105(d)(8))",
    Retention.PRIVACY_RECORD: "Kept as the record of privacy requests and opt-outs (CCPA §7101)",
    Retention.TENANT_LINK: "Kept while your organisation's Microsoft tenant is linked: it serves the contract",
}
# Models with no personal field of their own whose rows are records, not account data.
KEPT_MODELS = {"privacy.optout": Retention.PRIVACY_RECORD}
ERASED_EMAIL_DOMAIN = "erased.invalid"


def _plan_for(declaration) -> tuple[str, Retention | None]:
    label = declaration.model._meta.label_lower
    if label in KEPT_MODELS:
        return "keep", KEPT_MODELS[label]
    longer = sorted({p.retention for p in declaration.personal.values() if p.retention != Retention.ACCOUNT})
    if longer:
        return "keep", Retention(longer[0])
    return "erase", None


def erasure_plan(user: User) -> list[dict]:
    """Per data set: erase or keep (with the reason and period), and how many rows. No data."""
    organizations = user_organizations(user)
    plan = []
    for declaration in sorted(declared_models(), key=lambda d: d.model._meta.label):
        if declaration.subject != Subject.PORTAL_USER or not declaration.subject_lookup:
            continue
        model = declaration.model
        if model is User:
            plan.append(
                {
                    "data": "Your account (name, email, job title, password)",
                    "action": "erase",
                    "rows": 1,
                    "how": "anonymised; its encryption keys destroyed",
                }
            )
            continue
        action, retention = _plan_for(declaration)
        rows = _count(model, declaration.subject_lookup, user, organizations)
        if not rows:
            continue
        item = {
            "data": str(model._meta.verbose_name_plural).capitalize(),
            "action": action,
            "rows": rows,
            "model": model._meta.label_lower,
        }
        if action == "keep":
            item |= {"why": KEPT_BECAUSE[retention], "retention": Retention(retention).label}
        plan.append(item)
    return plan


def _querysets(model, lookup: str, user: User, organizations):
    """The person's rows of ``model``, with the scope to read or delete them in: tenant-owned rows
    (a notification addressed to them) in each of their organisations' contexts, others in the
    person's own (row-level security per person shows the application role only theirs)."""
    if isinstance(model._default_manager, TenantManager):
        for org in organizations:
            yield (
                (lambda o=org: tenant_context(o)),
                (lambda m=model, o=org: m.objects.for_org(o).filter(**{lookup: user.pk})),
            )
    elif model._meta.db_table in TENANCY_TABLES:
        # Memberships and staff grants: the person's own context shows theirs, but only the context of the
        # organisation a row names may change it (decision 044), so each is deleted there.
        with person_context(user):
            named = model._default_manager.filter(**{lookup: user.pk}).values_list("organization_id", flat=True)
            org_ids = sorted(set(named), key=str)
        for org_id in org_ids:
            yield (
                (lambda o=org_id: tenant_context(o)),
                (lambda m=model, o=org_id: m._default_manager.filter(organization_id=o, **{lookup: user.pk})),
            )
    else:
        yield (lambda: person_context(user)), (lambda: model._default_manager.filter(**{lookup: user.pk}))


def _count(model, lookup: str, user: User, organizations) -> int:
    total = 0
    for scope, make in _querysets(model, lookup, user, organizations):
        with scope():
            total += make().count()
    return total


def _delete(model, lookup: str, user: User, organizations) -> None:
    for scope, make in _querysets(model, lookup, user, organizations):
        with scope():
            make().delete()


@transaction.atomic
def erasure_schedule(*, request: PrivacyRequest, actor: Actor) -> Erasure:
    """Start the grace period of an approved deletion request."""
    email = request.data_subject_email
    subject = subject_account(request)
    people = [] if subject is not None or not email else directory_subjects(email, request_organization(request))
    if subject is None and not people:
        raise PrivacyRequestError("no_account", "There is no account or directory user with this email address "
                                                "to erase.")
    erasure, created = Erasure.objects.get_or_create(
        request=request,
        defaults={
            "subject_id": str(subject.pk) if subject is not None else "",
            "directory_users": [{"org": str(p.organization_id), "id": str(p.pk)} for p in people],
            "erase_after": timezone.now() + timedelta(days=settings.PRIVACY_ERASURE_GRACE_DAYS),
        },
    )
    if created:
        history_add(request, Action.NOTE, note=f"Erasure scheduled after {erasure.erase_after:%Y-%m-%d %H:%M} UTC")
        history_audit(request, "erasure_scheduled", actor)
    return erasure


@in_request_context
@transaction.atomic
def erasure_cancel(*, request_id, user: User) -> Erasure:
    """The requester changes their mind during the grace period."""
    request = request_locked(request_id)
    erasure = Erasure.objects.select_for_update().filter(request=request).first()
    if erasure is None or request.requester_id != user.pk:
        raise PrivacyRequestError("not_found", "There is no scheduled deletion to cancel.")
    if erasure.status != Erasure.Status.SCHEDULED:
        raise PrivacyRequestError("too_late", "The deletion has already been carried out or cancelled.")
    erasure.status = Erasure.Status.CANCELLED
    erasure.save(update_fields=["status", "updated_at"])
    request.status, request.completed_at = Status.COMPLETED, timezone.now()
    request.save(update_fields=["status", "completed_at", "updated_at"])
    history_add(request, Action.COMPLETED, actor=user, label="requester", note="Deletion cancelled by the requester")
    history_audit(request, "erasure_cancelled", Actor.user(user))
    request_email_send(
        request=request,
        template="completed",
        context={"note": "You cancelled the deletion of your account. Nothing was deleted."},
    )
    return erasure


def erasures_due():
    """Scheduled erasures past their grace period (and directory erasures waiting for Microsoft), except
    people under a legal hold (they wait)."""
    held_orgs, held_users = retention.held_subjects()
    due = Erasure.objects.filter(
        status__in=(Erasure.Status.SCHEDULED, Erasure.Status.UNASSIGNING), erase_after__lte=timezone.now()
    ).exclude(subject_id__in=[str(u) for u in held_users])
    # Directory users are held through their organisation; the ids sit in a JSON list, so filter here.
    held_directory = [e.pk for e in due.exclude(directory_users=[]) if _directory_held(e, held_orgs)]
    return due.exclude(pk__in=held_directory)


def _directory_held(erasure: Erasure, held_orgs=None) -> bool:
    if held_orgs is None:
        held_orgs, _ = retention.held_subjects()
    return any(entry["org"] in {str(o) for o in held_orgs} for entry in erasure.directory_users)


def erasure_perform(*, erasure_id, actor: Actor) -> Erasure:
    """Carry out a scheduled erasure whose grace period is over. Idempotent. In its request's context (decision
    048), which the erasure's own row names."""
    request_id = Erasure.objects.values_list("request_id", flat=True).get(pk=erasure_id)
    with privacy_request_context(request_id):
        return _erasure_perform(erasure_id=erasure_id, actor=actor)


def _erasure_perform(*, erasure_id, actor: Actor) -> Erasure:
    erasure = Erasure.objects.select_for_update().get(pk=erasure_id)
    if erasure.status not in (Erasure.Status.SCHEDULED, Erasure.Status.UNASSIGNING):
        return erasure
    if erasure.erase_after > timezone.now():
        raise PrivacyRequestError("grace_period", "The grace period has not ended yet.")
    if erasure.subject_id in {str(u) for u in retention.held_subjects()[1]} or _directory_held(erasure):
        raise PrivacyRequestError("legal_hold", "A legal hold covers this person: the erasure waits until it ends.")
    if not erasure.subject_id:
        return _perform_directory(erasure, actor)
    request = request_locked(erasure.request_id)
    with person_context(erasure.subject_id):  # their own row: row-level security on users (decision 043)
        user = User.objects.select_for_update().get(pk=erasure.subject_id)
    organizations = user_organizations(user)
    plan = erasure_plan(user)

    # Memberships last: they decide which organisations' rows are the person's.
    erase = sorted(
        (i for i in plan if i["action"] == "erase" and "model" in i), key=lambda i: i["model"] == "accounts.membership"
    )
    for item in erase:
        declaration = next(d for d in declared_models() if d.model._meta.label_lower == item["model"])
        _delete(declaration.model, declaration.subject_lookup, user, organizations)
    _anonymise(user, actor)
    notices = recipient_notices_open(request, [o.pk for o in organizations])

    erasure.status, erasure.performed_at, erasure.outcome = Erasure.Status.DONE, timezone.now(), plan
    erasure.save(update_fields=["status", "performed_at", "outcome", "updated_at"])
    request.status, request.completed_at = Status.COMPLETED, timezone.now()
    request.save(update_fields=["status", "completed_at", "updated_at"])
    summary = _summary(plan, notices)
    history_add(request, Action.COMPLETED, note=summary)
    history_audit(
        request,
        "erasure_performed",
        actor,
        erased=[i["data"] for i in plan if i["action"] == "erase"],
        kept=[i["data"] for i in plan if i["action"] == "keep"],
    )
    request_email_send(request=request, template="completed", context={"note": summary})
    return erasure


def _perform_directory(erasure: Erasure, actor: Actor) -> Erasure:
    """A directory user's erasure: unassign through the outbox, and erase once Microsoft confirmed."""
    request = request_locked(erasure.request_id)
    people = directory_erasure.people_of(erasure)
    if erasure.status == Erasure.Status.SCHEDULED:
        erasure.outcome = directory_erasure.directory_plan(people)  # counted before anything is removed
    if not directory_erasure.directory_unassign(people, reference=request.reference, actor=actor):
        if erasure.status == Erasure.Status.SCHEDULED:
            erasure.status = Erasure.Status.UNASSIGNING
            erasure.save(update_fields=["status", "outcome", "updated_at"])
            history_add(request, Action.NOTE, note="Licenses queued for removal in Microsoft 365; erasure follows "
                                                   "once Microsoft confirms")
            history_audit(request, "erasure_unassigning", actor)
        return erasure
    directory_erasure.directory_erase(people, actor=actor)
    plan = erasure.outcome
    notices = recipient_notices_open(request, sorted({e["org"] for e in erasure.directory_users}))
    erasure.status, erasure.performed_at = Erasure.Status.DONE, timezone.now()
    erasure.save(update_fields=["status", "performed_at", "outcome", "updated_at"])
    request.status, request.completed_at = Status.COMPLETED, timezone.now()
    request.save(update_fields=["status", "completed_at", "updated_at"])
    summary = _summary(plan, notices, backups="Backups: directory data is encrypted under your organisation's "
                       "key; copies in backups are deleted when those backups expire.")
    history_add(request, Action.COMPLETED, note=summary)
    history_audit(request, "erasure_performed", actor,
                  erased=[i["data"] for i in plan if i["action"] == "erase"],
                  kept=[i["data"] for i in plan if i["action"] == "keep"])
    request_email_send(request=request, template="completed", context={"note": summary})
    return erasure


def _anonymise(user: User, actor: Actor) -> None:
    # Destroy first: from here on, every earlier ciphertext of this person (backups too) is unreadable.
    data_key_destroy(scope=KeyScope("subject", str(user.pk)), actor=actor)
    user.email = f"erased-{user.pk.hex[:12]}@{ERASED_EMAIL_DOMAIN}"
    user.full_name, user.job_title = "Erased user", ""
    user.set_unusable_password()
    user.is_active, user.last_login = False, None
    with person_context(user):
        user.save()


BACKUPS_SHREDDED = "Backups: your encryption keys are destroyed, so copies in backups can no longer be read."


def _summary(plan: list[dict], notices: list[RecipientNotice], backups: str = BACKUPS_SHREDDED) -> str:
    lines = ["Erased:"]
    lines += [f"- {i['data']}: {i.get('how') or str(i['rows']) + ' deleted'}" for i in plan if i["action"] == "erase"]
    kept = [i for i in plan if i["action"] == "keep"]
    if kept:
        lines.append("Kept, and why:")
        lines += [f"- {i['data']} ({i['rows']}): {i['why']}; retention: {i['retention']}" for i in kept]
    if notices:
        recipients = ", ".join(dict(Disclosure.Recipient.choices).get(n.recipient, n.recipient) for n in notices)
        lines.append(f"We are telling those who received your data of this deletion: {recipients}.")
    lines.append(backups)
    return "\n".join(lines)
