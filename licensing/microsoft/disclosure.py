"""The one place where the client records that it is sending personal data to Microsoft.

Partner Center and Graph methods that put names, e-mail addresses, postal addresses, phone
numbers, UPNs or customer tenant ids into a request describe that with :class:`PersonalData`;
the transport base class (:class:`licensing.microsoft.base.ApiBase`) calls :func:`record` with
the operation's request id before the first byte leaves, inside the caller's transaction when
there is one. Data is disclosed once it is sent, whether or not Microsoft then accepts it, so
the row is written before the call. Recording is idempotent on the request id, so retries and
redelivered tasks are one disclosure.

Not disclosures: catalog reads, and identifiers Microsoft itself issued used to address its
own resources (a customer tenant id in a URL path, a directory object id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.disclosures import disclosure_record, disclosure_record_many
from core.models import Disclosure
from core.registry import Category


@dataclass(frozen=True)
class PersonalData:
    categories: frozenset[Category]
    purpose: str
    organization: object | None = None
    subject_count: int = 1
    # The directory users concerned, when known: a restricted one (GDPR Art. 18) stops the call.
    subject_model: str | None = None
    subject_ids: tuple = ()

    @classmethod
    def of(
        cls,
        categories: Iterable[Category],
        *,
        purpose: str,
        organization=None,
        subject_count: int = 1,
        subject_model: str | None = None,
        subject_ids=(),
    ) -> PersonalData:
        return cls(frozenset(categories), purpose, organization, subject_count, subject_model,
                   tuple(str(i) for i in subject_ids))


def record(personal: PersonalData, *, operation: str, request_id: str) -> Disclosure:
    return disclosure_record(
        recipient=Disclosure.Recipient.MICROSOFT,
        organization=personal.organization,
        categories=sorted(personal.categories),
        purpose=personal.purpose,
        operation=operation,
        ms_request_id=request_id,
        subject_count=personal.subject_count,
        subject_model=personal.subject_model,
        subject_ids=personal.subject_ids,
    )



def record_many(personal: list[tuple[PersonalData, str]], *, operation: str) -> list[Disclosure]:
    """:func:`record` for the chunks of one call, each (its personal data, its request id): one row each.
    The chunks share categories, purpose and organisation and name no subjects (Graph.batch's chunks)."""
    first = personal[0][0]
    if any(p.subject_ids or p.subject_model for p, _ in personal):
        return [record(p, operation=operation, request_id=request_id) for p, request_id in personal]
    return disclosure_record_many(
        recipient=Disclosure.Recipient.MICROSOFT, organization=first.organization, categories=sorted(first.categories),
        purpose=first.purpose, operation=operation,
        requests=[(request_id, p.subject_count) for p, request_id in personal],
    )

Purpose = Disclosure.Purpose
