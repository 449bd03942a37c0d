"""Row-level security on the users table (docs/decisions/043-row-level-security-on-users.md).

As raw SQL under the application role: a person's own row, fellow members of the organisations in scope and
reseller staff are readable; nobody else's row is readable, changeable, deletable or plantable, whatever
context is set; with no context, no row at all. End to end as the application role with the system role on its
own connection (``tests.test_rls.ProductionRoles``): the flows that read users before anyone is in scope
(the session's user, sign-in, sign-up, password reset, invitations) and the pages that show other people.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now as timezone_now

from accounts.invitations import invitation_create
from accounts.models import Membership, Role, StaffRole, TOTPDevice, User
from accounts.selectors import signed_in_user, user_by_session_or_link_id
from accounts.tests.api_support import key_client, make_api_key
from accounts.tests.factories import (
    DEFAULT_PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    StaffGrantFactory,
    TOTPDeviceFactory,
    UserFactory,
)
from accounts.tests.helpers import totp_code, verified_client
from core.audit import Actor, audit_record
from core.tenancy import RLS_PERSON_SETTING, RLS_SETTING, person_context, tenant_context
from tests.test_rls import PROBE_ROLE, SYSTEM_ALIAS, ProductionRoles, current_role, fetch, roles  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

USERS = "SELECT id FROM accounts_user"
PLANT = (
    "INSERT INTO accounts_user (id, password, is_superuser, email, email_index, full_name, job_title, is_active, "
    "is_staff, date_joined, privacy_notice_version) VALUES (%s, '', false, 'x', %s, '', '', true, %s, now(), '')"
)


def _visible() -> set:
    return {row[0] for row in fetch(USERS)}


def _refused(sql, params) -> None:
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch(sql, params)


def test_the_application_role_sees_the_person_fellow_members_and_staff_and_changes_only_its_own_row(roles):  # noqa: F811
    app_role, _ = roles
    org, elsewhere = OrganizationFactory(), OrganizationFactory()
    alice, carol = MembershipFactory(organization=org).user, MembershipFactory(organization=org).user
    bob = MembershipFactory(organization=elsewhere).user
    staff, loner = UserFactory(is_staff=True), UserFactory()
    fetch(f"SET LOCAL ROLE {app_role}")

    # No context: no row at all (not an error that would tell anything), whatever the old bypass says.
    fetch("SELECT set_config('app.rls_bypass', 'on', true)")
    assert _visible() == set()
    assert fetch("SELECT count(*) FROM accounts_user WHERE is_staff")[0][0] == 0

    with tenant_context(org):  # the organisation's members and staff: read only
        assert _visible() == {alice.pk, carol.pk, staff.pk}
        for person in (carol, staff, bob, loner):
            assert fetch("UPDATE accounts_user SET full_name = 'x' WHERE id = %s RETURNING id", [person.pk]) == []
            assert fetch("DELETE FROM accounts_user WHERE id = %s RETURNING id", [person.pk]) == []
        _refused(PLANT, [uuid.uuid4(), "plant-a", False])
        _refused(PLANT, [uuid.uuid4(), "plant-b", True])  # nor a staff account

    with person_context(alice):  # herself, and staff: her own row is hers to change
        assert _visible() == {alice.pk, staff.pk}
        assert fetch("UPDATE accounts_user SET job_title = 'x' WHERE id = %s RETURNING id", [alice.pk]) == [(alice.pk,)]
        # Her row cannot be turned into someone else's, nor another person's row written.
        _refused("UPDATE accounts_user SET id = %s WHERE id = %s", [uuid.uuid4(), alice.pk])
        _refused(PLANT, [uuid.uuid4(), "plant-c", False])
        assert fetch("UPDATE accounts_user SET job_title = 'x' WHERE id = %s RETURNING id", [carol.pk]) == []

    # An unrelated organisation's or person's context shows none of these people but staff.
    fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(OrganizationFactory.build().pk)])
    fetch("SELECT set_config(%s, %s, true)", [RLS_PERSON_SETTING, str(uuid.uuid4())])
    assert _visible() == {staff.pk}
    assert fetch("DELETE FROM accounts_user WHERE id = %s RETURNING id", [staff.pk]) == []

    # A new account is written in its own context (sign-up): admitted, and only that one.
    new_id = uuid.uuid4()
    fetch("SELECT set_config(%s, %s, true)", [RLS_PERSON_SETTING, str(new_id)])
    fetch(PLANT, [new_id, "new-account", False])
    assert new_id in _visible()
    fetch("RESET ROLE")
    assert User.objects.filter(pk__in=[alice.pk, carol.pk, bob.pk, staff.pk, loner.pk]).count() == 5
    assert User.objects.get(pk=carol.pk).full_name == carol.full_name


# --- end to end as the application role --------------------------------------------------------------------

SIGNUP = {
    "full_name": "Signe Upton",
    "email": "signe@example.com",
    "password1": "a sturdy passphrase 42",
    "password2": "a sturdy passphrase 42",
    "legal_name": "Upton Trading GmbH",
    "business_name": "",
    "country": "de",
    "time_zone": "Europe/Berlin",
}


def _link(pattern: str) -> str:
    return re.search(pattern, mail.outbox[-1].body).group(0)


@pytest.mark.django_db(transaction=True)
def test_sign_up_sign_in_and_password_reset_work_as_the_application_role(settings):
    login = reverse("accounts:login")
    with ProductionRoles(settings):
        browser = Client()
        # Sign-up: the address is checked as the system role, the account written in its own context.
        response = browser.post(reverse("accounts:signup"), SIGNUP)
        assert response.status_code == 302 and response["Location"] == reverse("accounts:verify_email_sent")
        sent = len(mail.outbox)
        with time_machine.travel(timezone_now() + timedelta(minutes=2)):  # past the resend interval
            browser.post(reverse("accounts:verify_email_sent"))  # "send it again", before anyone is signed in
        assert len(mail.outbox) == sent + 1 and mail.outbox[-1].to == [SIGNUP["email"]]
        assert browser.get(_link(r"/accounts/verify-email/\S+"))["Location"].startswith(reverse("accounts:mfa_enroll"))
        user = user_by_session_or_link_id(browser.session["_auth_user_id"])
        assert user is not None and user.email == SIGNUP["email"] and user.email_verified
        assert browser.get(reverse("accounts:mfa_enroll")).status_code == 200
        with person_context(user):
            device = TOTPDevice.objects.get(user=user, confirmed=False)
        enrolled = browser.post(reverse("accounts:mfa_enroll"), {"code": totp_code(device), "name": "Phone"})
        assert enrolled.status_code == 200
        with person_context(user):  # their own memberships (decision 044)
            slug = Membership.objects.filter(user=user).values_list("organization__slug", flat=True).get()
        assert browser.get(f"/o/{slug}/").status_code == 200

        # Signing in again: the password found by e-mail as the system role, then the authenticator's code.
        again = Client()
        response = again.post(login, {"username": SIGNUP["email"], "password": SIGNUP["password1"]})
        assert response.status_code == 302, response.content
        with person_context(user):
            device.refresh_from_db()
        code = totp_code(device, at=time.time() + device.step)  # the enrolment used this step's code
        assert again.post(reverse("accounts:mfa_verify"), {"code": code}).status_code == 302
        page = again.get(f"/o/{slug}/team/")
        assert page.status_code == 200 and SIGNUP["full_name"] in page.content.decode()

        # A wrong password, an unknown address: refused, never a server error.
        assert Client().post(login, {"username": SIGNUP["email"], "password": "wrong!"}).status_code == 400
        assert Client().post(login, {"username": "nobody@example.com", "password": "x"}).status_code == 400

        # Password reset by e-mail: found as the system role, the new password written in the person's context.
        reset = Client()
        assert reset.post(reverse("accounts:password_reset"), {"email": SIGNUP["email"]}).status_code == 302
        form = reset.get(_link(r"/accounts/reset/\S+/"), follow=True)
        assert form.status_code == 200 and "new_password1" in form.content.decode()
        new_password = "a brand new passphrase 7"
        done = reset.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
        assert done["Location"] == reverse("accounts:password_reset_complete")
        assert Client().post(login, {"username": SIGNUP["email"], "password": new_password}).status_code == 302
    assert User.objects.get(pk=user.pk).check_password(new_password)


@pytest.mark.django_db(transaction=True)
def test_invitations_are_accepted_by_a_new_and_an_existing_person_as_the_application_role(settings):
    org = OrganizationFactory()
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    existing = UserFactory(email="existing@example.com")
    existing_browser = verified_client(Client(), existing)  # signed in before: the test client's login writes
    with ProductionRoles(settings):
        with tenant_context(org):
            invitation_create(organization=org, email="newcomer@example.com", role=Role.VIEWER, actor=owner)
        url = _link(r"/accounts/invitations/[^/\s]+/")
        page = Client().get(url)
        assert page.status_code == 200 and 'value="newcomer@example.com"' in page.content.decode()
        data = {"full_name": "New Comer", "email": "newcomer@example.com",
                "password1": "a sturdy passphrase 42", "password2": "a sturdy passphrase 42"}
        response = Client().post(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:mfa_enroll"))

        with tenant_context(org):
            invitation_create(organization=org, email=existing.email, role=Role.VIEWER, actor=owner)
        url = _link(r"/accounts/invitations/[^/\s]+/")
        response = existing_browser.post(url)
        assert response["Location"] == f"/o/{org.slug}/"
        assert existing_browser.get(response["Location"]).status_code == 200
    newcomer = User.objects.get_by_email("newcomer@example.com")
    assert newcomer.full_name == "New Comer"
    assert set(Membership.objects.filter(organization=org).values_list("user_id", flat=True)) == {
        owner.pk, newcomer.pk, existing.pk}


@pytest.mark.django_db(transaction=True)
def test_pages_name_members_staff_and_former_members_as_the_application_role(settings):
    org = OrganizationFactory()
    owner = MembershipFactory(organization=org, role=Role.OWNER, user__full_name="Olga Owner").user
    carol = MembershipFactory(organization=org, role=Role.VIEWER, user__full_name="Carol Member").user
    dave = MembershipFactory(organization=org, role=Role.VIEWER, user__full_name="Dave Departed").user
    outsider = UserFactory(full_name="Otto Outsider")
    erin_user = MembershipFactory(organization=org, role=Role.VIEWER, user__full_name="Erin Example").user
    grant = StaffGrantFactory(organization=org, staff__full_name="Sam Staff", staff__is_superuser=True,
                              roles=[StaffRole.SUPPORT_READER])
    with tenant_context(org):
        for actor in (Actor.user(carol), Actor.user(dave), Actor.staff(grant.staff, grant), Actor.user(outsider)):
            audit_record(actor=actor, action="subscription.viewed", organization=org)
    Membership.objects.filter(user=dave).delete()  # removed from the organisation since
    browser = verified_client(Client(), owner)
    _key, plaintext = make_api_key(org, creator=owner)
    staff_browser = verified_client(Client(), grant.staff)
    with ProductionRoles(settings):
        team = browser.get(f"/o/{org.slug}/team/").content.decode()
        assert "Olga Owner" in team and "Carol Member" in team and "Dave Departed" not in team
        access = browser.get(f"/o/{org.slug}/team/reseller-access/").content.decode()
        assert "Sam Staff" in access

        # The activity log: a member by name, staff by name, a former member and a stranger as "Former user".
        activity = browser.get(f"/o/{org.slug}/security/activity/")
        assert activity.status_code == 200
        text = activity.content.decode()
        assert "Carol Member" in text and "Sam Staff" in text and "Former user" in text
        assert "Dave Departed" not in text and "Otto Outsider" not in text

        # The API by key: the members, named.
        members = key_client(plaintext).get("/api/v1/members/")
        assert members.status_code == 200 and carol.email in members.content.decode()

        # Managing the team: a fellow member's role changed, then removed (their membership locked, not their row).
        with tenant_context(org):  # the organisation's memberships (decision 044)
            erin = Membership.objects.get(organization=org, user=erin_user)
        changed = browser.post(f"/o/{org.slug}/team/members/{erin.pk}/role/", {"role": Role.LICENSE_ADMIN})
        assert changed.status_code == 302, changed.content
        assert browser.post(f"/o/{org.slug}/team/members/{erin.pk}/remove/").status_code == 302
        with tenant_context(org):
            assert not Membership.objects.filter(pk=erin.pk).exists()

        # The staff admin's people, under the grant's tenant context: the organisation's members only.
        people = staff_browser.get(reverse("admin:accounts_user_changelist"))
        assert people.status_code == 200
        listed = people.content.decode()
        assert carol.email in listed and owner.email in listed and dave.email not in listed
        assert outsider.email not in listed
    # The owner connection shows the same: the selector names only members and staff.
    settings.TENANCY_SYSTEM_DATABASE = "default"
    assert "Dave Departed" not in browser.get(f"/o/{org.slug}/security/activity/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_user_by_session_or_link_id_is_one_system_statement_and_fails_closed_without_the_system_role(settings):
    org = OrganizationFactory()
    alice = MembershipFactory(organization=org, role=Role.OWNER).user
    TOTPDeviceFactory(user=alice)
    browser = verified_client(Client(), alice)
    api = verified_client(Client(headers={"X-Organization": org.slug}), alice)
    with ProductionRoles(settings) as production:
        assert current_role() == PROBE_ROLE
        user = user_by_session_or_link_id(alice.pk)
        assert user == alice and user._state.db == "default"  # bound to the application role's connection
        with person_context(user):
            user.refresh_from_db()  # so a refresh or a save runs as the application role, not the system role
        assert user_by_session_or_link_id("not-an-id") is None and user_by_session_or_link_id(uuid.uuid4()) is None

        # A session's user is read with their memberships: one system statement gives both, and the page does
        # not read the memberships again (the switcher and the time zone use them).
        signed_in = signed_in_user(alice.pk)
        assert signed_in == alice and signed_in._state.db == "default"
        assert [(m.organization_id, m._state.db, m.organization._state.db) for m in signed_in.memberships_at_sign_in
                ] == [(org.pk, "default", "default")]
        assert signed_in.memberships_at_sign_in[0].user is signed_in
        assert signed_in_user("not-an-id") is None and signed_in_user(uuid.uuid4()) is None
        for page in (reverse("accounts:profile"), f"/o/{org.slug}/"):
            with CaptureQueriesContext(connection) as default, \
                    CaptureQueriesContext(connections[SYSTEM_ALIAS]) as system:
                assert browser.get(page).status_code == 200
            loads = [q["sql"] for q in system.captured_queries if '"accounts_user"."password"' in q["sql"]]
            assert len(loads) == 1 and "BEGIN" not in str(system.captured_queries)
            assert 'FROM "accounts_membership"' in loads[0]
            again = [q for q in system.captured_queries if q["sql"] != loads[0] and "accounts_membership" in q["sql"]]
            assert not again
            assert not [q for q in default.captured_queries if 'FROM "accounts_user"' in q["sql"]]

        # Single-role: the application role alone cannot find the session's user: anonymous, never a 500.
        production.system_configured(False)
        assert browser.get(f"/o/{org.slug}/")["Location"].startswith(reverse("accounts:login"))
        assert api.get("/api/v1/organization/").status_code in (401, 403)
        assert Client().post(reverse("accounts:login"), {"username": alice.email, "password": DEFAULT_PASSWORD}
                             ).status_code == 400
        production.system_configured(True)
        assert browser.get(f"/o/{org.slug}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_privacy_requests_erasure_key_rotation_and_the_demo_seed_work_as_the_application_role(settings):
    from django.core.management import call_command

    from accounts.demo import DEMO_OWNER_EMAIL
    from core.audit import Actor as AuditActor
    from privacy.models import Erasure
    from privacy.services import request_decisions as decisions
    from privacy.services.erasure import erasure_perform
    from privacy.services.requests import request_submit_portal
    from privacy.tests.factories import make_officer
    from tests.test_rls import _reencrypt

    org = OrganizationFactory()
    subject = MembershipFactory(organization=org, role=Role.VIEWER, user__full_name="Rhea Requester").user
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    officer = make_officer(full_name="Olive Officer")
    console = verified_client(Client(), officer)
    people = User.objects.count()
    with ProductionRoles(settings) as production:
        # A signed-in person's deletion request, the officer's page and approval, then the erasure itself.
        request = request_submit_portal(user=subject, kind="deletion", region="eu_uk", recent_mfa=True)
        assert console.get(f"/privacy/console/{request.pk}/").status_code == 200
        assigned = console.post(f"/privacy/console/{request.pk}/assign/", {"officer": officer.pk})
        assert assigned.status_code in (200, 302), assigned.content
        assert "Olive Officer" in console.get("/privacy/console/").content.decode()  # staff named in its context
        decisions.request_approve(request_id=request.pk, actor=officer)
        erasure = Erasure.objects.get(request_id=request.pk)
        with time_machine.travel(erasure.erase_after + timedelta(minutes=1)):
            done = erasure_perform(erasure_id=erasure.pk, actor=AuditActor.system("rls-test"))
        assert done.status == Erasure.Status.DONE
        # An opt-out by a signed-in person is honoured at once, their account read in their own context.
        opt_out = request_submit_portal(user=owner, kind="opt_out", region="us_ca", recent_mfa=True)
        assert opt_out.status == "completed"

        # Key rotation re-encrypts every person's row as the system role; the application role alone, none.
        assert f"in {people} row(s)" in _reencrypt("accounts.User")
        production.system_configured(False)
        assert "in 0 row(s)" in _reencrypt("accounts.User")
        production.system_configured(True)

        # The demo seed creates its people in their own contexts, and a second run finds them again.
        call_command("seed_demo", accounts_only=True, stdout=io.StringIO())
        call_command("seed_demo", accounts_only=True, stdout=io.StringIO())
    erased = User.objects.get(pk=subject.pk)
    assert erased.full_name == "Erased user" and not erased.is_active
    assert User.objects.filter(email_index=User.objects.get_by_email(DEMO_OWNER_EMAIL).email_index).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_staff_grant_reminders_and_expiry_name_the_staff_member_as_the_application_role(settings):
    from accounts import grants
    from accounts.models import StaffGrant

    now = timezone_now()
    grant = StaffGrantFactory(starts_at=now - timedelta(days=1), expires_at=now + timedelta(days=2))
    with ProductionRoles(settings):
        with time_machine.travel(now + timedelta(minutes=1), tick=False):
            assert grants.staff_grants_expire_and_remind() == {"expired": 0, "reminded": 1}
        assert mail.outbox[-1].to == [grant.staff.email]  # the staff row, read in the organisation's context
        with time_machine.travel(grant.expires_at + timedelta(minutes=1), tick=False):
            assert grants.staff_grants_expire_and_remind()["expired"] == 1
    assert StaffGrant.objects.get(pk=grant.pk).status == StaffGrant.Status.EXPIRED


@pytest.mark.django_db(transaction=True)
def test_the_officer_works_requests_as_the_application_role(settings):
    """The console's actions, in the officer's own context as ``privacy.views.console.OfficerMixin`` runs them:
    staff rows are readable there, the subject's only through their own context."""
    from django.utils import timezone

    from privacy.models import PrivacyRequest
    from privacy.services import request_decisions as decisions
    from privacy.services import requests as privacy_requests
    from privacy.tests.factories import make_officer

    subject = MembershipFactory(role=Role.OWNER).user
    officer = make_officer()

    def as_officer(action, **kwargs):
        with person_context(officer):
            return action(actor=officer, **kwargs)

    def submitted(kind):
        return as_officer(privacy_requests.request_submit_staff, email=subject.email, name="Sue Subject", kind=kind,
                          region="eu_uk", details="by post", received_at=timezone.now())

    with ProductionRoles(settings):
        access, correction = submitted("access"), submitted("correction")
        as_officer(privacy_requests.request_verify_by_officer, request_id=access.pk, method_note="ID checked")
        as_officer(decisions.request_assign, request_id=access.pk, officer=officer)
        as_officer(decisions.request_note_add, request_id=access.pk, note="called back")
        as_officer(decisions.request_extend, request_id=access.pk, reason="a complex request")
        as_officer(decisions.request_approve, request_id=access.pk)
        as_officer(decisions.request_complete, request_id=access.pk, note="sent")
        as_officer(decisions.request_deny, request_id=correction.pk, reason="nothing to correct")
    assert PrivacyRequest.objects.get(pk=access.pk).status == "completed"
    assert PrivacyRequest.objects.get(pk=access.pk).assigned_to_id == officer.pk
    assert PrivacyRequest.objects.get(pk=correction.pk).status == "denied"


@pytest.mark.django_db(transaction=True)
def test_an_older_password_hash_is_upgraded_on_sign_in_as_the_application_role(settings):
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(password=make_password(DEFAULT_PASSWORD, hasher="pbkdf2_sha256"))
    with ProductionRoles(settings):
        response = Client().post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
        assert response.status_code == 302, response.content
    assert User.objects.get(pk=user.pk).password.startswith("md5$")  # rewritten in the person's own context
