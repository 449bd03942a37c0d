from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from .models import Disclosure
from .registry import Category


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
    """
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
