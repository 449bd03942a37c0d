"""The disclosure log writer, and the gate that keeps opted-out data from non-essential disclosures.

Every outbound sharing of personal data calls :func:`disclosure_record` before the data leaves
(the Microsoft client's choke point, ``licensing/microsoft/disclosure.py``). Purposes that are not
strictly necessary to serve the customer (:data:`NON_ESSENTIAL_PURPOSES`: marketing shared with a
distributor) are refused with :class:`DisclosureRefused` when the organisation opted out of sale
and sharing. Who opted out is the privacy app's knowledge, a higher floor: it registers its check
with :func:`register_opt_out_check` in its ``AppConfig.ready()``. Without a registered check
non-essential disclosures are refused (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import IntegrityError, transaction

from .models import Disclosure
from .registry import Category

NON_ESSENTIAL_PURPOSES = frozenset({Disclosure.Purpose.MARKETING})

_opt_out_checks: list[Callable[[object], bool]] = []


class DisclosureRefused(Exception):
    """The disclosure is not strictly necessary and the organisation opted out of sale and sharing."""


def register_opt_out_check(check: Callable[[object], bool]) -> None:
    """``check(organization) -> bool``: True when the organisation opted out. Registered once per process."""
    if check not in _opt_out_checks:
        _opt_out_checks.append(check)


def disclosure_allowed(*, organization, purpose: str) -> bool:
    """Whether a disclosure for ``purpose`` about ``organization`` may go ahead."""
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
) -> Disclosure:
    """Log that personal data of ``categories`` is being sent to ``recipient``.

    Runs inside the caller's transaction when there is one (a savepoint otherwise), so the log
    row commits or rolls back with the change that caused the disclosure. Idempotent on
    (recipient, operation, request id): a retried operation is one disclosure. Not audited
    separately: the log is itself the append-only record, and auditing it would double every
    Microsoft call's writes without adding information.

    Raises :class:`DisclosureRefused` for a non-essential purpose when the organisation opted out.
    """
    if not disclosure_allowed(organization=organization, purpose=purpose):
        raise DisclosureRefused(f"{organization} opted out of sale and sharing; {purpose} disclosures are refused.")
    categories = sorted({Category(c).value for c in categories})
    if ms_request_id:
        existing = Disclosure.objects.filter(recipient=recipient, operation=operation, request_id=ms_request_id).first()
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
    disclosure.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            disclosure.save()
    except IntegrityError:
        # A concurrent retry of the same operation logged it first.
        return Disclosure.objects.get(recipient=recipient, operation=operation, request_id=ms_request_id)
    return disclosure
