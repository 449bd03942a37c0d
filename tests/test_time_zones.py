"""One rule for times: the organisation's zone, named next to the time, on organisation pages and on the
person's own account pages (MFA, sessions) alike; one date format everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import TOTPDevice
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.timezones import format_day, format_moment, organization_zone

MOMENT = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)


def test_formats():
    assert format_day(date(2026, 12, 17)) == "17 Dec 2026"
    assert format_moment(MOMENT, ZoneInfo("Asia/Tokyo")) == "8 Dec 2026, 12:30 JST"
    assert format_moment(MOMENT, ZoneInfo("America/New_York")) == "7 Dec 2026, 22:30 EST"
    # A day given as a moment is the day in the zone; a date is never shifted.
    assert format_day(MOMENT, ZoneInfo("America/New_York")) == "7 Dec 2026"
    assert organization_zone(OrganizationFactory.build(time_zone="Not/AZone")) == ZoneInfo("UTC")


@pytest.mark.parametrize("language", ["en-us", "fr", "de"])
def test_a_day_is_written_as_dateformat_writes_it_in_every_month_and_language(language):
    from django.utils import dateformat, translation

    from core.timezones import DAY_FORMAT

    with translation.override(language):
        for value in [date(2026, month, day) for month in range(1, 13) for day in (1, 9, 28)]:
            assert format_day(value) == dateformat.format(value, DAY_FORMAT)
        # A datetime is the day in the zone, as before.
        assert format_day(MOMENT, ZoneInfo("America/New_York")) == dateformat.format(date(2026, 12, 7), DAY_FORMAT)


@pytest.mark.django_db
def test_mfa_page_shows_times_in_the_organisations_zone(client):
    organization = OrganizationFactory(time_zone="Asia/Tokyo")
    user = MembershipFactory(organization=organization, role=Role.OWNER).user
    browser = verified_client(client, user)
    TOTPDevice.objects.filter(user=user).update(last_used_at=MOMENT)
    page = browser.get(reverse("accounts:mfa_devices")).content.decode()
    assert "8 Dec 2026, 12:30 JST" in page
    assert "03:30" not in page


@pytest.mark.django_db
def test_account_pages_follow_the_organisation_last_worked_in(client):
    tokyo = OrganizationFactory(time_zone="Asia/Tokyo")
    berlin = OrganizationFactory(time_zone="Europe/Berlin")
    user = MembershipFactory(organization=tokyo, role=Role.OWNER).user
    MembershipFactory(organization=berlin, role=Role.OWNER, user=user)
    browser = verified_client(client, user)
    TOTPDevice.objects.filter(user=user).update(last_used_at=MOMENT)
    browser.get(reverse("licensing:subscriptions", kwargs={"org_slug": berlin.slug}))
    assert "8 Dec 2026, 04:30 CET" in browser.get(reverse("accounts:mfa_devices")).content.decode()
    browser.get(reverse("licensing:subscriptions", kwargs={"org_slug": tokyo.slug}))
    assert "8 Dec 2026, 12:30 JST" in browser.get(reverse("accounts:mfa_devices")).content.decode()
