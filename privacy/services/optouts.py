"""Recording opt-outs of sale and sharing: from the GPC signal, the choices form, the API, staff or a request.

An opt-out is recorded once per holder (person, organisation, browser) and kept: a later visit
without the signal does not undo it (CCPA §7025(c)(5)). Writing again is a no-op that returns
the first record, whose date the pages show.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, transaction

from accounts.selectors import memberships_for_user
from core.audit import Actor, audit_record
from core.tenancy import person_context, tenant_read_context
from privacy.models import BrowserOptOut, OptOut, OptOutMethod


@dataclass(frozen=True)
class OptOutState:
    """What a page shows: since when, and how the opt-out was made."""

    since: date
    method: str

    @property
    def via_gpc(self) -> bool:
        return self.method == OptOutMethod.GPC

    @classmethod
    def of(cls, record) -> OptOutState:
        return cls(since=_as_date(record.recorded_at), method=record.method)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _record_once(lookup: dict, method: str) -> tuple[OptOut, bool]:
    existing = OptOut.objects.filter(**lookup).first()
    if existing is not None:
        return existing, False
    record = OptOut(method=method, **lookup)
    # The person is an instance in hand, whose row row-level security may not show here (decision 043).
    record.full_clean(exclude=["user"], validate_constraints=False)
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        return OptOut.objects.get(**lookup), False  # a concurrent request recorded it first
    return record, True


@transaction.atomic
def opt_out_organization_record(*, organization, method: str, actor: Actor) -> OptOut:
    """The organisation opts out of the sale and sharing of its data. Idempotent. Read and written in the
    organisation's context (row-level security), whatever the caller's."""
    OptOutMethod(method)
    with tenant_read_context(organization):
        record, created = _record_once({"organization": organization}, method)
        if created:
            audit_record(actor=actor, action="privacy.opt_out_recorded", organization=organization, target=record,
                         metadata={"holder": "organization", "method": method})
    return record


@transaction.atomic
def opt_out_user_record(*, user, method: str, actor: Actor) -> OptOut:
    """A signed-in person opts out: recorded on their account and on every organisation they belong to.

    The organisations' opt-outs govern what is disclosed about them (core.disclosures), since
    the data that could be shared with a distributor is the organisation's and its people's.
    """
    OptOutMethod(method)
    with person_context(user):  # the person's own row (row-level security per person); each organisation's below
        record, created = _record_once({"user": user}, method)
        if created:
            audit_record(actor=actor, action="privacy.opt_out_recorded", target=record,
                         metadata={"holder": "user", "method": method})
    for membership in memberships_for_user(user):
        opt_out_organization_record(organization=membership.organization, method=method, actor=actor)
    return record


def opt_out_browser_record(*, method: str) -> BrowserOptOut:
    """A new anonymous browser opts out: a fresh random id for its cookie, and the evidence row.

    Not audited: the audit chain is for accounts and organisations; anonymous visitors would
    only fill it. The row is the evidence (CCPA §7025: data collected for the signal is used
    for nothing else).
    """
    OptOutMethod(method)
    record = BrowserOptOut(browser_id=secrets.token_hex(16), method=method)
    record.full_clean()
    record.save()
    return record
