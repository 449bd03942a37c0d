"""The privacy notice: its versions, each with the date it took effect.

The text lives in templates (``privacy/notice/<version>.html``), reviewed in git like code. A change
of text is a new entry in :data:`VERSIONS` with a new template and its effective date; the old
entries stay, so the version someone accepted can always be shown again. The version in force when
an account is created is stored on the account (``accounts.User.privacy_notice_version``), which
asks :func:`current_version` through ``settings.PRIVACY_NOTICE_CURRENT_VERSION`` (a dotted path:
accounts sits below privacy and must not import it).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone


@dataclass(frozen=True)
class NoticeVersion:
    version: str
    effective: datetime.date
    summary: str

    @property
    def template_name(self) -> str:
        return f"privacy/notice/{self.version}.html"


# Oldest first. Never edit a published entry's text: add a new version.
VERSIONS: tuple[NoticeVersion, ...] = (
    NoticeVersion("2026-01-01", datetime.date(2026, 1, 1), "First published notice."),
)


def _today() -> datetime.date:
    return timezone.now().date()


def current_version(on: datetime.date | None = None) -> NoticeVersion:
    """The version in force on ``on`` (today by default): the latest that took effect by then.

    Before the first version's date the first version is returned, so there is always one.
    """
    on = on or _today()
    in_force = [v for v in VERSIONS if v.effective <= on]
    return in_force[-1] if in_force else VERSIONS[0]


def current_version_label() -> str:
    """What sign-up records on the account: the version string of the notice in force now."""
    return current_version().version


def version_named(version: str) -> NoticeVersion | None:
    return next((v for v in VERSIONS if v.version == version), None)


def published_versions(on: datetime.date | None = None) -> list[NoticeVersion]:
    """Versions that have taken effect, newest first (a future version is not shown before its date)."""
    on = on or _today()
    return [v for v in reversed(VERSIONS) if v.effective <= on] or [VERSIONS[0]]
