"""The MFA re-verification window (MFA_REVERIFY_SECONDS) on both sides of its edge."""


import pytest
import time_machine
from django.test import RequestFactory

from accounts.reauth import SESSION_KEY, has_recent_mfa, mark_mfa_verified


class _Session(dict):
    pass


@pytest.fixture
def request_with_session():
    request = RequestFactory().get("/")
    request.session = _Session()
    return request


def test_recent_up_to_the_window_and_not_a_second_after(request_with_session, settings):
    settings.MFA_REVERIFY_SECONDS = 600
    start = 1_800_000_000
    with time_machine.travel(start, tick=False):
        mark_mfa_verified(request_with_session)
        assert request_with_session.session[SESSION_KEY] == start
        assert has_recent_mfa(request_with_session)
    with time_machine.travel(start + 600, tick=False):
        assert has_recent_mfa(request_with_session)
    with time_machine.travel(start + 601, tick=False):
        assert not has_recent_mfa(request_with_session)


def test_never_verified_is_not_recent(request_with_session):
    assert not has_recent_mfa(request_with_session)
    request_with_session.session[SESSION_KEY] = 0
    assert not has_recent_mfa(request_with_session)
