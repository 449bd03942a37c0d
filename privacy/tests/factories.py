"""Factories and helpers for privacy tests."""

from __future__ import annotations

import re

from django.contrib.auth.models import Group
from django.core import mail

from accounts.tests.factories import UserFactory

OFFICERS_GROUP = "Privacy officers"


def make_officer(**kwargs):
    """A staff member in the privacy officers group (created by privacy's migration)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=OFFICERS_GROUP))
    return user


def last_code(to: str) -> str:
    """The six-digit code in the latest verification email sent to ``to``."""
    for message in reversed(mail.outbox):
        if to in message.to and "verification code" in message.subject:
            return re.search(r"^\s+(\d{6})\s*$", message.body, re.M).group(1)
    raise AssertionError(f"No verification code was emailed to {to}.")
