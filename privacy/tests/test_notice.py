"""The privacy notice: a stable public URL, versioned, linked from every page and from sign-up."""

from __future__ import annotations

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from privacy import notice
from privacy.notice import NoticeVersion

pytestmark = pytest.mark.django_db

SIGNUP = {
    "full_name": "Ines Duarte",
    "email": "ines@example.com",
    "password1": "a sturdy passphrase 42",
    "password2": "a sturdy passphrase 42",
    "legal_name": "Duarte Lda",
    "business_name": "",
    "country": "PT",
    "time_zone": "Europe/Lisbon",
}

TWO_VERSIONS = (
    NoticeVersion("2026-01-01", datetime.date(2026, 1, 1), "First published notice."),
    NoticeVersion("2026-09-01", datetime.date(2026, 9, 1), "Names our distributors."),
)


@pytest.fixture
def two_versions(monkeypatch):
    monkeypatch.setattr(notice, "VERSIONS", TWO_VERSIONS)
    # The second version reuses the first one's text: the test is about versions, not wording.
    monkeypatch.setattr(NoticeVersion, "template_name", property(lambda v: "privacy/notice/2026-01-01.html"))


def test_notice_is_public_without_javascript_or_third_parties(client, settings):
    settings.PRIVACY_OFFICER_NAME = "Dana Privacy"
    settings.PRIVACY_OFFICER_EMAIL = "dpo@reseller.example"
    settings.PRIVACY_OFFICER_ADDRESS = "1 Main Street\nSpringfield"
    response = client.get("/privacy/")
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("privacy:notice") == "/privacy/"
    assert "Version 2026-01-01" in html and 'datetime="2026-01-01"' in html
    assert "Dana Privacy" in html and 'href="mailto:dpo@reseller.example"' in html and "Springfield" in html
    assert "Your rights" in html and "since 1 January 2022" in html
    # Nothing loaded from another origin: every src/href is local (or a mailto).
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#", "mailto:")), url
    # The text is in the HTML itself, not fetched by a script.
    assert "We do not sell personal information" in html


def test_footer_links_to_notice_on_every_kind_of_page(client):
    owner = MembershipFactory(organization__slug="acme").user
    pages = [
        client.get("/accounts/login/"),
        client.get("/no-such-page/"),
        client.get("/privacy/"),
    ]
    verified_client(client, owner)
    pages.append(client.get("/o/acme/"))
    pages.append(client.get("/accounts/profile/"))
    for page in pages:
        html = page.content.decode()
        assert re.search(r'<footer[\s\S]*<a href="/privacy/">Privacy notice</a>[\s\S]*</footer>', html), page


def test_signup_links_to_notice_and_records_the_version_in_force(client, django_capture_on_commit_callbacks,
                                                                   two_versions):
    assert 'href="/privacy/"' in client.get(reverse("accounts:signup")).content.decode()
    before = time_machine.travel(datetime.datetime(2026, 8, 31, 23, 0, tzinfo=datetime.UTC), tick=False)
    with before, django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:signup"), SIGNUP)
    assert User.objects.get_by_email("ines@example.com").privacy_notice_version == "2026-01-01"
    assert len(mail.outbox) == 1
    with time_machine.travel(datetime.datetime(2026, 9, 1, 0, 1, tzinfo=datetime.UTC), tick=False):
        client.post(reverse("accounts:signup"), {**SIGNUP, "email": "later@example.com"})
    assert User.objects.get_by_email("later@example.com").privacy_notice_version == "2026-09-01"


def test_versions_take_effect_on_their_date_and_old_ones_stay_readable(client, two_versions):
    with time_machine.travel(datetime.datetime(2026, 8, 31, 12, tzinfo=datetime.UTC), tick=False):
        assert notice.current_version().version == "2026-01-01"
        html = client.get("/privacy/").content.decode()
        assert "Version 2026-01-01" in html
        # A version not yet in force is not published.
        assert client.get("/privacy/notice/2026-09-01/").status_code == 404
    with time_machine.travel(datetime.datetime(2026, 9, 1, 0, 0, tzinfo=datetime.UTC), tick=False):
        assert notice.current_version().version == "2026-09-01"
        html = client.get("/privacy/").content.decode()
        assert "Version 2026-09-01" in html and 'href="/privacy/notice/2026-01-01/"' in html
        old = client.get("/privacy/notice/2026-01-01/").content.decode()
        assert "This is an earlier version" in old
    assert client.get("/privacy/notice/1999-01-01/").status_code == 404


def test_a_user_who_accepted_an_older_version_is_told_it_changed(client, two_versions):
    user = MembershipFactory().user
    User.objects.filter(pk=user.pk).update(privacy_notice_version="2026-01-01")
    verified_client(client, user)
    with time_machine.travel(datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC), tick=False):
        html = client.get("/privacy/").content.decode()
    assert "The notice has changed since you created your account" in html


def test_notice_reachable_before_second_factor(client):
    user = MembershipFactory().user
    client.force_login(user)  # signed in, second factor not verified yet
    assert client.get("/privacy/").status_code == 200
    assert client.get("/o/x/").status_code == 302
