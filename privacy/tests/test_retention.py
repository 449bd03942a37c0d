"""The retention purge removes exactly what has expired, honours legal holds, and a second run removes nothing."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.models import SignInEvent
from accounts.tests.factories import MembershipFactory
from core.models import AuditEvent
from privacy.models import BrowserOptOut, LegalHold, PrivacyRequest, RetentionRun
from privacy.services.requests import request_submit_public
from privacy.services.retention import held_subjects, legal_hold_place, legal_hold_release, retention_purge
from privacy.tasks import retention_purge as retention_purge_task

from .factories import make_officer

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 12, 7, 2, 0, tzinfo=datetime.UTC)


def _sign_in(user, days_ago, hours=0):
    return SignInEvent.objects.create(user=user, occurred_at=NOW - datetime.timedelta(days=days_ago, hours=hours),
                                      succeeded=True, factor="totp")


@time_machine.travel(NOW, tick=False)
def test_purge_removes_exactly_what_expired_and_a_second_run_removes_nothing():
    user = MembershipFactory().user
    expired = _sign_in(user, 400, hours=1)  # 400 days and an hour ago: past the security-log period
    kept = _sign_in(user, 399, hours=23)
    old_browser = BrowserOptOut.objects.create(browser_id="a" * 32, method="gpc_header",
                                               recorded_at=NOW - datetime.timedelta(days=731))
    young_browser = BrowserOptOut.objects.create(browser_id="b" * 32, method="gpc_header",
                                                 recorded_at=NOW - datetime.timedelta(days=729))
    dry = retention_purge(dry_run=True)
    assert dry.dry_run and dry.counts == {"accounts.signinevent": 1, "privacy.browseroptout": 1}
    assert SignInEvent.objects.count() == 2  # a dry run deletes nothing
    run = retention_purge(batch_size=1)
    assert run.counts == dry.counts and run.finished_at is not None
    assert list(SignInEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not SignInEvent.objects.filter(pk=expired.pk).exists()
    assert list(BrowserOptOut.objects.values_list("pk", flat=True)) == [young_browser.pk]
    assert not BrowserOptOut.objects.filter(pk=old_browser.pk).exists()
    assert retention_purge_task() == {}
    assert RetentionRun.objects.count() == 3
    # The run records counts, never the data.
    assert "198." not in str(RetentionRun.objects.values_list("counts", "held"))


@time_machine.travel(NOW, tick=False)
def test_legal_hold_suspends_purging_for_a_person_and_an_organisation():
    held_person = MembershipFactory().user
    member = MembershipFactory()
    free = MembershipFactory().user
    for user in (held_person, member.user, free):
        _sign_in(user, 500)
    LegalHold.objects.create(user=held_person, reason="Litigation hold")
    LegalHold.objects.create(organization=member.organization, reason="Regulator inquiry")
    run = retention_purge()
    assert run.counts == {"accounts.signinevent": 1} and run.held == {"organizations": 1, "people": 2}
    assert set(SignInEvent.objects.values_list("user_id", flat=True)) == {held_person.pk, member.user.pk}
    LegalHold.objects.update(released_at=NOW)
    assert retention_purge().counts == {"accounts.signinevent": 2}


def test_open_requests_are_never_purged_and_closed_ones_go_after_24_months():
    with time_machine.travel(NOW - datetime.timedelta(days=800), tick=False):
        open_one = request_submit_public(email="a@example.org", name="", kind="access", region="eu_uk")
        closed = request_submit_public(email="b@example.org", name="", kind="access", region="eu_uk")
        closed.status = PrivacyRequest.Status.DENIED
        closed.save()
    with time_machine.travel(NOW, tick=False):
        run = retention_purge()
    assert run.counts.get("privacy.privacyrequest") == 1
    assert list(PrivacyRequest.objects.values_list("pk", flat=True)) == [open_one.pk]


def test_legal_holds_are_placed_and_released_with_an_owner_and_audited():
    officer, membership = make_officer(), MembershipFactory()
    hold = legal_hold_place(actor=officer, reason="Regulator inquiry", organization=membership.organization)
    assert hold.owner == officer and held_subjects() == ({membership.organization.pk}, {membership.user.pk})
    legal_hold_release(hold_id=hold.pk, actor=officer)
    assert held_subjects() == (set(), set())
    assert AuditEvent.unscoped_objects.filter(action__startswith="privacy.legal_hold_").count() == 2
    with pytest.raises(ValidationError):  # a hold needs an organisation or a person
        legal_hold_place(actor=officer, reason="Nothing held")
