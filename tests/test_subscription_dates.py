"""One subscription's dates, walked through every surface that shows them, must agree.

Microsoft says the term's last day is 16 Dec 2026 (commitmentEndDate); the subscription renews on
17 Dec 2026, and 16 Dec 2026 is the last day to schedule fewer seats. The organisation sits in a zone
behind UTC (New York) or far ahead of it (Auckland): calendar days must not move with it.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

import licensing.tasks_directory  # noqa: F401 - registers the e-mail task the reminders enqueue
from accounts.models import StaffRole
from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing import nce
from licensing.microsoft.resources.partner_center import Subscription as RemoteSubscription
from licensing.models import Notification
from licensing.services import notifications as notification_services
from licensing.tests.core.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
TERM_ENDS, RENEWS, LAST_DAY = date(2026, 12, 16), date(2026, 12, 17), date(2026, 12, 16)
WORDS = {TERM_ENDS: "16 Dec 2026", RENEWS: "17 Dec 2026"}

# What Partner Center answers for a term that started 17 Dec 2025 at 16:57 UTC.
PARTNER_CENTER = {
    "id": "a4f9c1de-6b54-4a1f-9d8e-2f0c3b7a5e61", "offerId": "CFQ7TTC0LCHC:0002:x", "quantity": 5,
    "status": "active", "autoRenewEnabled": True, "termDuration": "P1Y", "billingCycle": "monthly",
    "commitmentEndDate": "2026-12-16T00:00:00Z", "commitmentEndDateTime": "2026-12-17T16:56:59Z",
}


def _texts(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</dd>', html, re.S)
    assert found, element_id
    return re.sub(r"<[^>]+>", "", found.group(1))


@pytest.fixture(params=["America/New_York", "Pacific/Auckland"])
def walk(request, client):
    organization = OrganizationFactory(time_zone=request.param)
    owner = MembershipFactory(organization=organization, role=Role.OWNER).user
    remote = RemoteSubscription.from_json(PARTNER_CENTER)
    with tenant_context(organization):
        subscription = SubscriptionFactory(
            organization=organization, ms_subscription_id=remote.id, quantity=remote.quantity,
            commitment_end=remote.commitment_end, auto_renew=True, unit_price=Decimal("22.00"),
            start_date=datetime(2025, 12, 17, 16, 57, tzinfo=UTC),
            cancellation_allowed_until=datetime(2025, 12, 24, 16, 57, tzinfo=UTC),
        )
    with time_machine.travel(NOW, tick=False):
        yield organization, subscription, verified_client(client, owner)


def test_the_definitions():
    end = RemoteSubscription.from_json(PARTNER_CENTER).commitment_end
    assert nce.term_dates(end) == nce.TermDates(TERM_ENDS, RENEWS, LAST_DAY)
    # nce.term_end, used when the portal computes a term itself, lands on the same last second.
    assert nce.term_end(datetime(2025, 12, 17, 16, 57, tzinfo=UTC), "P1Y") == end


def test_one_subscription_shows_the_same_dates_everywhere(walk, django_capture_on_commit_callbacks):
    organization, subscription, browser = walk
    slug = organization.slug

    # The Subscriptions list.
    listing = browser.get(reverse("licensing:subscriptions", kwargs={"org_slug": slug})).content.decode()
    row = re.search(rf'data-subscription="{subscription.pk}".*?</tr>', listing, re.S).group(0)
    assert f'<time datetime="2026-12-17">{WORDS[RENEWS]}</time>' in row

    # The subscription's own page.
    page = browser.get(reverse("licensing:subscription", kwargs={"org_slug": slug, "pk": subscription.pk}))
    html = page.content.decode()
    assert _texts(html, "term-ends-on") == WORDS[TERM_ENDS]
    assert _texts(html, "renews-on") == WORDS[RENEWS]
    assert _texts(html, "last-day-to-reduce").startswith(WORDS[LAST_DAY])

    # The renewal calendar.
    calendar = browser.get(reverse("licensing:renewals", kwargs={"org_slug": slug})).content.decode()
    entry = re.search(rf"<th scope=\"row\">{subscription}.*?</tr>", calendar, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", entry, re.S)]
    assert cells[:2] == [WORDS[RENEWS], WORDS[LAST_DAY]]

    # The renewals CSV.
    export = browser.get(reverse("licensing:report_export", kwargs={"org_slug": slug, "report": "renewals"}))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert (rows[0]["Term ends"], rows[0]["Renews on"], rows[0]["Last day to reduce"]) == (
        "2026-12-16", "2026-12-17", "2026-12-16")

    # The API: the subscription and the renewals report.
    api = api_client_for(organization)
    body = api.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert (body["term_ends_on"], body["renews_on"], body["last_day_to_reduce"]) == (
        "2026-12-16", "2026-12-17", "2026-12-16")
    renewal = api.get("/api/v1/renewals/").json()[0]
    assert (renewal["term_ends_on"], renewal["renews_on"], renewal["last_day_to_reduce"]) == (
        "2026-12-16", "2026-12-17", "2026-12-16")

    # The notification and its e-mail.
    with django_capture_on_commit_callbacks(execute=True), tenant_context(organization):
        notification_services.reminders_run(organization=organization)
        note = Notification.objects.for_org(organization).filter(kind=Notification.Kind.RENEWAL_REMINDER).first()
    assert WORDS[RENEWS] in note.title
    assert f"renew on {WORDS[RENEWS]}" in note.body and f"Last day to reduce: {WORDS[LAST_DAY]}" in note.body
    assert not re.search(r"\d{1,2} Dec 2026", note.body.replace(WORDS[RENEWS], "").replace(WORDS[LAST_DAY], ""))
    emails = [m for m in mail.outbox if m.subject == note.title]
    assert emails and note.body in emails[0].body

    # The staff admin's columns.
    staff = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(staff=staff, organization=organization, roles=[StaffRole.SUPPORT_READER])
    admin = verified_client(browser.__class__(), staff)
    changelist = admin.get("/admin/licensing/subscription/").content.decode()
    for column, value in (("term_ends", TERM_ENDS), ("renews", RENEWS), ("last_day_to_reduce", LAST_DAY)):
        cell = re.search(rf'class="field-{column}">([^<]*)<', changelist)
        assert cell and cell.group(1) == WORDS[value], column
