"""The disclosure log writer, and the gate that keeps opted-out data from non-essential disclosures.

Every outbound sharing of personal data calls :func:`disclosure_record` before the data leaves
(the Microsoft client's choke point, ``licensing/microsoft/disclosure.py``). Purposes that are not
strictly necessary to serve the customer (:data:`NON_ESSENTIAL_PURPOSES`: marketing shared with a
distributor) are refused with :class:`DisclosureRefused` when the organisation opted out of sale
and sharing. Who opted out is the privacy app's knowledge, a higher floor: it registers its check
with :func:`register_opt_out_check` in its ``AppConfig.ready()``. Without a registered check
non-essential disclosures are refused (fail closed).

A disclosure that names its subjects (``subject_model`` and ``subject_ids``) is also refused when
one of them is restricted (GDPR Art. 18, ``core.field_locks``), unless its purpose is one of
:data:`RESTRICTION_EXEMPT_PURPOSES`: a legal obligation or security (Art. 18(2): legal claims,
another person's rights, public interest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext

from django.db import IntegrityError, transaction

from .field_locks import restricted_object_ids
from .models import Disclosure
from .registry import Category
from .tenancy import tenant_read_context

NON_ESSENTIAL_PURPOSES = frozenset({Disclosure.Purpose.MARKETING})
RESTRICTION_EXEMPT_PURPOSES = frozenset({Disclosure.Purpose.LEGAL_OBLIGATION, Disclosure.Purpose.SECURITY})

_opt_out_checks: list[Callable[[object], bool]] = []


class DisclosureRefused(Exception):
    """The disclosure is not strictly necessary and the organisation opted out of sale and sharing,
    or it concerns a person whose data is restricted (GDPR Art. 18)."""


def _own_context(organization):
    """Where a disclosure is checked, read and written: its organisation's tenant context (row-level security on
    the log and on the restrictions it consults), whatever the caller's; the caller's own when it is exactly that
    one (a provisioning run's), at no cost. A disclosure of no organisation needs none: the application role may
    append and read those, as org-less audit events. The functions below are atomic, so a refusal or a caught
    duplicate rolls back no more than their own savepoint."""
    return tenant_read_context(organization) if organization is not None else nullcontext()


def register_opt_out_check(check: Callable[[object], bool]) -> None:
    """``check(organization) -> bool``: True when the organisation opted out. Registered once per process."""
    if check not in _opt_out_checks:
        _opt_out_checks.append(check)


def disclosure_allowed(*, organization, purpose: str, subject_model=None, subject_ids: Iterable = ()) -> bool:
    """Whether a disclosure for ``purpose`` about ``organization`` (and these subjects) may go ahead."""
    subject_ids = list(subject_ids)
    if (
        subject_ids
        and purpose not in RESTRICTION_EXEMPT_PURPOSES
        and restricted_object_ids(organization, subject_model, subject_ids)
    ):
        return False
    if purpose not in NON_ESSENTIAL_PURPOSES:
        return True
    if not _opt_out_checks:
        return False
    return not any(check(organization) for check in _opt_out_checks)


@transaction.atomic
def disclosure_record(
    *,
    recipient: str,
    organization,
    categories: Iterable[str],
    purpose: str,
    operation: str,
    ms_request_id: str,
    subject_count: int = 1,
    subject_model=None,
    subject_ids: Iterable = (),
) -> Disclosure:
    """Log that personal data of ``categories`` is being sent to ``recipient``.

    Runs inside the caller's transaction when there is one (a savepoint otherwise), so the log
    row commits or rolls back with the change that caused the disclosure. Idempotent on
    (recipient, operation, request id): a retried operation is one disclosure. Not audited
    separately: the log is itself the append-only record, and auditing it would double every
    Microsoft call's writes without adding information.

    Raises :class:`DisclosureRefused` for a non-essential purpose when the organisation opted out,
    and for any purpose but the Art. 18(2) ones when a named subject is restricted.
    """
    with _own_context(organization):
        subject_ids = list(subject_ids)
        if not disclosure_allowed(organization=organization, purpose=purpose, subject_model=subject_model,
                                  subject_ids=subject_ids):
            if subject_ids and restricted_object_ids(organization, subject_model, subject_ids):
                raise DisclosureRefused(
                    f"A person concerned has restricted processing; {purpose} disclosures are refused.")
            raise DisclosureRefused(f"{organization} opted out of sale and sharing; {purpose} disclosures are refused.")
        categories = sorted({Category(c).value for c in categories})
        if ms_request_id:
            existing = Disclosure.objects.filter(
                recipient=recipient, operation=operation, request_id=ms_request_id).first()
            if existing is not None:
                return existing
        disclosure = Disclosure(
            recipient=recipient,
            organization=organization,
            categories=categories,
            purpose=purpose,
            operation=operation,
            subject_count=subject_count,
            request_id=ms_request_id or "",
        )
        # The organisation is still checked (its foreign key has no database constraint, see the model); the
        # keys are the database's to enforce, and checking them here cost a query on every $batch of a bulk job.
        disclosure.full_clean(validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                disclosure.save()
        except IntegrityError:
            # A concurrent retry of the same operation logged it first.
            return Disclosure.objects.get(recipient=recipient, operation=operation, request_id=ms_request_id)
        return disclosure


@transaction.atomic
def disclosure_record_many(
    *,
    recipient: str,
    organization,
    categories: Iterable[str],
    purpose: str,
    operation: str,
    requests: list[tuple[str, int]],
) -> list[Disclosure]:
    """:func:`disclosure_record` for several requests of one call that disclose the same kind of data for the
    same purpose (the $batch calls of one outbox operation): ``requests`` holds (request id, subject count).

    One disclosure row per request, as before, and the same refusals; the checks run once and the new rows
    go in with one insert (a bulk job's operation of five $batch calls logged them in about twenty
    statements). Idempotent per request id: a request logged before (a retry) keeps its row.
    """
    with _own_context(organization):
        if not disclosure_allowed(organization=organization, purpose=purpose):
            raise DisclosureRefused(f"{organization} opted out of sale and sharing; {purpose} disclosures are refused.")
        categories = sorted({Category(c).value for c in categories})
        ids = [request_id for request_id, _ in requests]
        existing = {
            d.request_id: d
            for d in Disclosure.objects.filter(recipient=recipient, operation=operation, request_id__in=ids)
        }
        new = [
            Disclosure(recipient=recipient, organization=organization, categories=categories, purpose=purpose,
                       operation=operation, subject_count=count, request_id=request_id)
            for request_id, count in requests if request_id not in existing
        ]
        for number, disclosure in enumerate(new):
            # The organisation's check is a query (its foreign key has no database constraint): once is enough,
            # every row names the same one.
            if number == 0:
                disclosure.full_clean(validate_unique=False, validate_constraints=False)
            else:
                disclosure.clean_fields(exclude=["organization"])
        try:
            with transaction.atomic():
                Disclosure.objects.bulk_create(new)
        except IntegrityError:
            # A concurrent retry logged some of them first: one at a time, each idempotent.
            return [
                disclosure_record(recipient=recipient, organization=organization, categories=categories,
                                  purpose=purpose, operation=operation, ms_request_id=request_id, subject_count=count)
                for request_id, count in requests
            ]
        created = {d.request_id: d for d in new}
        return [existing.get(request_id) or created[request_id] for request_id in ids]
