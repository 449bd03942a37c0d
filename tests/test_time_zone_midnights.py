"""Times are stored in UTC and shown in the organisation's zone: the calendar day flips at local midnight."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template

from core.timezones import organization_zone


class _Org:
    def __init__(self, time_zone):
        self.time_zone = time_zone


def _render(organization, value) -> str:
    template = Template(
        "{% load tz portal_ui %}{% timezone organization|as_zone %}{{ value|date:'Y-m-d H:i' }}{% endtimezone %}"
    )
    return template.render(Context({"organization": organization, "value": value}))


@pytest.mark.parametrize(
    ("zone", "local_midnight_utc"),
    [
        ("Europe/London", datetime(2026, 7, 1, 23, 0, tzinfo=UTC)),  # BST, UTC+1
        ("Europe/London", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),  # GMT
        ("America/New_York", datetime(2026, 3, 9, 4, 0, tzinfo=UTC)),  # the day after the spring change, UTC-4
        ("Asia/Kolkata", datetime(2026, 2, 28, 18, 30, tzinfo=UTC)),  # UTC+5:30
        ("Pacific/Kiritimati", datetime(2028, 2, 28, 10, 0, tzinfo=UTC)),  # UTC+14, into a leap day
    ],
)
def test_the_shown_day_flips_exactly_at_local_midnight(zone, local_midnight_utc):
    organization = _Org(zone)
    before = _render(organization, local_midnight_utc - timedelta(seconds=1))
    at = _render(organization, local_midnight_utc)
    assert before.endswith(" 23:59")
    assert at.endswith(" 00:00")
    local = local_midnight_utc.astimezone(organization_zone(organization))
    assert at.startswith(local.date().isoformat())
    assert before[:10] == (local.date() - timedelta(days=1)).isoformat()


@pytest.mark.parametrize("zone", ["", None, "Mars/Olympus_Mons", "../etc/passwd"])
def test_unknown_or_missing_zone_shows_utc(zone):
    organization = _Org(zone)
    assert str(organization_zone(organization)) == "UTC"
    assert _render(organization, datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2026-01-01 00:00"
    assert _render(organization, datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)) == "2025-12-31 23:59"
