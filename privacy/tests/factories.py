"""Factories and helpers for privacy tests."""

from __future__ import annotations

import re

from django.contrib.auth.models import Group, Permission
from django.core import mail

from accounts.tests.factories import UserFactory

OFFICERS_GROUP = "Privacy officers"


def officers_group() -> Group:
    """The group privacy's migration creates; a flushed database (transactional tests) loses it, so
    it is made again here with its permission."""
    group, created = Group.objects.get_or_create(name=OFFICERS_GROUP)
    if created:
        group.permissions.add(Permission.objects.get(content_type__app_label="privacy",
                                                     codename="work_privacyrequest"))
    return group


def make_officer(**kwargs):
    """A staff member in the privacy officers group."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(officers_group())
    return user


def last_code(to: str) -> str:
    """The six-digit code in the latest verification email sent to ``to``."""
    for message in reversed(mail.outbox):
        if to in message.to and "verification code" in message.subject:
            return re.search(r"^\s+(\d{6})\s*$", message.body, re.M).group(1)
    raise AssertionError(f"No verification code was emailed to {to}.")
