"""The erasure log outside the database, and replaying it after a restore."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from core.audit import Actor
from core.crypto import DecryptionError, KeyScope
from core.erasure_log import erasure_log_since
from core.keys import data_key_destroy
from core.models import DataKey

pytestmark = pytest.mark.django_db


def _subject(user) -> KeyScope:
    return KeyScope("subject", str(user.pk))


def _restore_key(snapshot) -> None:
    """What a restore from a backup taken before the erasure does: the wrapped key is back."""
    DataKey.objects.filter(pk=snapshot.pk).update(status=snapshot.status, wrapped_key=snapshot.wrapped_key,
                                                  retired_at=None)


def test_shredding_is_logged_outside_the_database_before_it_commits(settings):
    user = UserFactory(email="erase-me@example.com")
    data_key_destroy(scope=_subject(user), actor=Actor.system("test"))
    lines = Path(settings.ERASURE_LOG_PATH).read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(json.loads(lines[0])["entry"])
    assert entry["scope"] == f"subject:{user.pk}" and entry["actor"] == "system:test"
    assert "erase-me" not in lines[0]  # the log names key scopes, never the person


def test_a_scope_without_live_keys_is_not_logged_again(settings):
    user = UserFactory()
    data_key_destroy(scope=_subject(user), actor=Actor.system("test"))
    data_key_destroy(scope=_subject(user), actor=Actor.system("test"))
    assert len(Path(settings.ERASURE_LOG_PATH).read_text().splitlines()) == 1


def test_replay_destroys_again_what_a_restore_brought_back():
    user = UserFactory(email="back@example.com")
    backup_time = timezone.now()
    snapshot = DataKey.objects.get(scope_kind="subject", scope_id=str(user.pk))
    data_key_destroy(scope=_subject(user), actor=Actor.system("erasure"))
    _restore_key(snapshot)
    type(user).objects.get(pk=user.pk).email  # readable again: the restore's danger

    call_command("replay_erasures", since=backup_time.isoformat())

    with pytest.raises(DecryptionError):
        type(user).objects.get(pk=user.pk).email
    call_command("replay_erasures", since=backup_time.isoformat())  # a second replay is a no-op


def test_replay_only_takes_erasures_since_the_backup():
    early, late = UserFactory(), UserFactory()
    data_key_destroy(scope=_subject(early), actor=Actor.system("erasure"))
    cut = timezone.now() + timedelta(microseconds=1)
    data_key_destroy(scope=_subject(late), actor=Actor.system("erasure"))
    erasures, bad = erasure_log_since(cut)
    assert [e.scope for e in erasures] == [f"subject:{late.pk}"] and bad == []


def test_a_forged_line_is_refused_and_named(settings):
    user = UserFactory()
    data_key_destroy(scope=_subject(user), actor=Actor.system("erasure"))
    with open(settings.ERASURE_LOG_PATH, "a") as log:
        log.write(json.dumps({"entry": json.dumps({"at": timezone.now().isoformat(), "scope": "org:x",
                                                  "actor": "x"}), "mac": "0" * 64}) + "\n")
    with pytest.raises(CommandError, match=r"failed authentication .*\[2\]"):
        call_command("replay_erasures", since="2020-01-01T00:00:00Z")


def test_replay_needs_a_time_with_a_zone():
    with pytest.raises(CommandError, match="time zone"):
        call_command("replay_erasures", since="2026-12-07T03:00:00")
