"""Directory user actions through the outbox and the emulator: create, password reset (shown once),
block and unblock sign-in, offboarding with the mailbox choice, and their error cases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from core.audit import Actor
from core.crypto import blind_index
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation, TenantSku
from licensing.models.directory import UPN_INDEX
from licensing.provisioning import operation_execute
from licensing.services import assignments as assignment_services
from licensing.services.directory import offboard, passwords, users
from licensing.services.directory.users import DirectoryActionRefused

from . import directory_helpers
from .directory_helpers import FABRIKAM, premium, run_sync

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org

DOMAIN = "fabrikamdemo.onmicrosoft.com"
EXCHANGE_P1 = uuid.UUID("4b9405b0-7788-4568-add1-99614e613b69")
Status = ProvisioningOperation.Status
State = LicenseAssignment.State


@pytest.fixture
def admin(db):
    return UserFactory()


def act(organization, func, **kwargs):
    with tenant_context(organization):
        return func(organization=organization, **kwargs)


def reload(organization, row):
    with tenant_context(organization):
        return type(row).objects.for_org(organization).get(pk=row.pk)


def password_check(emulator, graph_id, password: str) -> dict:
    response = emulator.session.post(
        f"{emulator.base_url}/_emulator/tenants/{FABRIKAM}/users/{graph_id}/password-check",
        json={"password": password}, timeout=10)
    response.raise_for_status()
    return response.json()


def graph_user(graph, key: str) -> dict:
    return graph.graph.get_user(tenant_id=FABRIKAM, user_key=key,
                                select=["id", "accountEnabled", "assignedLicenses", "usageLocation"]).raw


def raw_rows_containing(secret: str) -> list[str]:
    """Every table and text column whose stored value contains ``secret`` (ciphertext does not)."""
    found = []
    find = "strpos" if connection.vendor == "postgresql" else "instr"
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            for column in columns:
                # A plain substring test: LIKE would read the password's % and _ as wildcards.
                cursor.execute(f'SELECT COUNT(*) FROM "{table}" WHERE {find}(CAST("{column}" AS TEXT), %s) > 0',
                               [secret])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}")
    return found


def audit_actions(organization, **filters) -> set[str]:
    with tenant_context(organization):
        return set(AuditEvent.objects.filter(organization_id=organization.pk, **filters)
                   .values_list("action", flat=True))


def licensed_user(organization, pool) -> DirectoryUser:
    with tenant_context(organization):
        return LicenseAssignment.objects.for_org(organization).filter(sku=pool, state=State.ASSIGNED)\
            .select_related("user").first().user


# --- create ---------------------------------------------------------------------------------------------------


def test_create_user_reaches_graph_appears_locally_and_shows_the_password_once(linked_org, emulator, graph, admin):
    actor = Actor.user(admin)
    operation = act(linked_org, users.directory_user_create, actor=actor, display_name="Ada Lovelace",
                    user_name="ada.lovelace", domain=DOMAIN, usage_location="gb", job_title="Analyst")
    operation = reload(linked_org, operation)
    assert operation.status == Status.SUCCEEDED, operation.last_error
    assert operation.requested_by_id == admin.pk and operation.target_type == "DirectoryUser"
    assert "password" not in operation.payload and passwords.password_waiting(operation)
    with tenant_context(linked_org):
        user = DirectoryUser.objects.for_org(linked_org).get(pk=operation.target_id)
    assert (user.display_name, user.user_principal_name, user.usage_location, user.job_title) == (
        "Ada Lovelace", f"ada.lovelace@{DOMAIN}", "GB", "Analyst")
    assert user.account_enabled and user.has_usage_location
    assert graph_user(graph, str(user.graph_id))["usageLocation"] == "GB"

    password = act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=actor)
    assert len(password) == users.PASSWORD_LENGTH
    check = password_check(emulator, user.graph_id, password)
    assert check["matches"] and check["forceChangePasswordNextSignIn"]
    # Never stored in plaintext anywhere, and gone after the one reveal (the search does find plaintext).
    assert "licensing_provisioningoperation.kind" in raw_rows_containing(users.CREATE)
    assert raw_rows_containing(password) == []
    with pytest.raises(DirectoryActionRefused) as again:
        act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=actor)
    assert again.value.code == "already_shown"
    operation = reload(linked_org, operation)
    assert "temporary_password" not in operation.result and not passwords.password_waiting(operation)
    assert {"directory.user_create_requested", "directory.user_created",
            "directory.temporary_password_revealed"} <= audit_actions(linked_org)


def test_create_refuses_bad_input_and_a_name_taken_locally(linked_org, admin):
    run_sync(linked_org)
    with tenant_context(linked_org):
        existing = DirectoryUser.objects.for_org(linked_org).first()
    taken_name, taken_domain = existing.user_principal_name.split("@")
    cases = [
        ({"user_name": "has space"}, "user_name"),
        ({"user_name": ".dot"}, "user_name"),
        ({"display_name": " "}, "display_name"),
        ({"domain": "other.example"}, "domain"),
        ({"usage_location": "GBR"}, "usage_location"),
        ({"user_name": taken_name.upper(), "domain": taken_domain}, "user_name"),
    ]
    for overrides, field in cases:
        spec = {"display_name": "New Person", "user_name": "new.person", "domain": DOMAIN, **overrides}
        with pytest.raises(DirectoryActionRefused) as refused:
            act(linked_org, users.directory_user_create, actor=Actor.user(admin), **spec)
        assert refused.value.field == field
    with tenant_context(linked_org):
        assert not ProvisioningOperation.objects.for_org(linked_org).filter(kind=users.CREATE).exists()


def test_a_name_taken_only_in_microsoft_fails_the_operation_clearly_and_erases_the_password(
        linked_org, emulator, graph, admin):
    graph.graph.create_user(organization=None, tenant_id=FABRIKAM, request_id=str(uuid.uuid4()),
                            display_name="Someone Else", mail_nickname="grace.hopper",
                            user_principal_name=f"grace.hopper@{DOMAIN}", password="Other!Pass42x")
    operation = act(linked_org, users.directory_user_create, actor=Actor.user(admin), display_name="Grace Hopper",
                    user_name="grace.hopper", domain=DOMAIN)
    operation = reload(linked_org, operation)
    assert operation.status == Status.FAILED
    assert operation.last_error_code == "upn_taken"
    assert operation.failure_reason == ("This user name is already taken in your Microsoft tenant. Choose another "
                                        "user name.")
    assert "password" not in operation.payload and not passwords.password_waiting(operation)
    with tenant_context(linked_org):
        assert not DirectoryUser.objects.for_org(linked_org).filter(
            upn_index=blind_index(UPN_INDEX, f"grace.hopper@{DOMAIN}")).exists()


def test_a_user_created_by_an_earlier_try_whose_answer_was_lost_is_adopted(linked_org, emulator, graph, admin,
                                                                            monkeypatch):
    monkeypatch.setattr("licensing.provisioning.operation_dispatch", lambda **kwargs: None)
    operation = act(linked_org, users.directory_user_create, actor=Actor.user(admin), display_name="Alan Turing",
                    user_name="alan.turing", domain=DOMAIN)
    with tenant_context(linked_org):
        sent = ProvisioningOperation.objects.for_org(linked_org).get(pk=operation.pk).payload["password"]
    # The first try reached Microsoft; its answer never came back.
    lost = graph.graph.create_user(organization=None, tenant_id=FABRIKAM, request_id=str(uuid.uuid4()),
                                   display_name="Alan Turing", mail_nickname="alan.turing",
                                   user_principal_name=f"alan.turing@{DOMAIN}", password=sent)
    operation_execute(operation_id=operation.pk, org_id=linked_org.pk)
    operation = reload(linked_org, operation)
    assert operation.status == Status.SUCCEEDED
    password = act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=Actor.user(admin))
    assert password == sent and password_check(emulator, lost.id, password)["matches"]
    with tenant_context(linked_org):
        assert DirectoryUser.objects.for_org(linked_org).get(pk=operation.target_id).graph_id == uuid.UUID(lost.id)


def test_two_requests_for_one_name_queued_together_give_one_user(linked_org, emulator, graph, admin, monkeypatch):
    monkeypatch.setattr("licensing.provisioning.operation_dispatch", lambda **kwargs: None)
    spec = {"actor": Actor.user(admin), "display_name": "Edsger Dijkstra", "user_name": "edsger", "domain": DOMAIN}
    first = act(linked_org, users.directory_user_create, **spec)
    second = act(linked_org, users.directory_user_create, **spec)
    for operation in (first, second):
        operation_execute(operation_id=operation.pk, org_id=linked_org.pk)
    first, second = reload(linked_org, first), reload(linked_org, second)
    assert first.status == Status.SUCCEEDED
    assert second.status == Status.FAILED and second.last_error_code == "upn_taken"
    password = act(linked_org, passwords.temporary_password_reveal, operation=first, actor=Actor.user(admin))
    with tenant_context(linked_org):
        graph_id = DirectoryUser.objects.for_org(linked_org).get(pk=first.target_id).graph_id
    assert password_check(emulator, graph_id, password)["matches"]


# --- password reset --------------------------------------------------------------------------------------------


def test_password_reset_sets_a_new_password_shown_only_to_the_requester(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    operation = act(linked_org, users.directory_user_password_reset, user=user, actor=Actor.user(admin),
                    force_change_password=False)
    operation = reload(linked_org, operation)
    assert operation.status == Status.SUCCEEDED and passwords.password_waiting(operation)
    with pytest.raises(DirectoryActionRefused) as other:
        act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=Actor.user(UserFactory()))
    assert other.value.code == "not_requester"
    password = act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=Actor.user(admin))
    check = password_check(emulator, user.graph_id, password)
    assert check["matches"] and not check["forceChangePasswordNextSignIn"]
    assert raw_rows_containing(password) == []


def test_a_newer_reset_erases_the_older_password_still_waiting(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    first = act(linked_org, users.directory_user_password_reset, user=user, actor=Actor.user(admin))
    second = act(linked_org, users.directory_user_password_reset, user=user, actor=Actor.user(admin))
    assert second.pk != first.pk
    with pytest.raises(DirectoryActionRefused) as stale:
        act(linked_org, passwords.temporary_password_reveal, operation=first, actor=Actor.user(admin))
    assert stale.value.code == "already_shown"
    password = act(linked_org, passwords.temporary_password_reveal, operation=second, actor=Actor.user(admin))
    assert password_check(emulator, user.graph_id, password)["matches"]


def test_an_unrevealed_password_expires(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    operation = act(linked_org, users.directory_user_password_reset, user=user, actor=Actor.user(admin))
    assert act(linked_org, passwords.temporary_passwords_expire) == 0
    with time_machine.travel(timezone.now() + users.PASSWORD_TTL + timedelta(minutes=1)):
        assert act(linked_org, passwords.temporary_passwords_expire) == 1
    operation = reload(linked_org, operation)
    assert "temporary_password" not in operation.result and "password_expired_at" in operation.result
    with pytest.raises(DirectoryActionRefused):
        act(linked_org, passwords.temporary_password_reveal, operation=operation, actor=Actor.user(admin))


# --- block and unblock -----------------------------------------------------------------------------------------


def test_block_signs_out_and_unblock_restores(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    emulator.clear_requests_log()
    blocked = reload(linked_org, act(linked_org, users.directory_user_block, user=user, actor=Actor.user(admin)))
    assert blocked.status == Status.SUCCEEDED
    assert {"sign_in_blocked", "sessions_revoked"} <= set(blocked.milestones)
    assert graph_user(graph, str(user.graph_id))["accountEnabled"] is False
    assert len(emulator.requests_log(path=f"/graph/v1.0/users/{user.graph_id}/revokeSignInSessions")) == 1
    assert reload(linked_org, user).account_enabled is False
    unblocked = reload(linked_org, act(linked_org, users.directory_user_unblock, user=user, actor=Actor.user(admin)))
    assert unblocked.status == Status.SUCCEEDED
    assert graph_user(graph, str(user.graph_id))["accountEnabled"] is True
    assert reload(linked_org, user).account_enabled is True


def test_a_user_deleted_in_microsoft_fails_with_a_clear_message(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    graph.graph._call("DELETE", FABRIKAM, f"/users/{user.graph_id}", "users.delete")
    operation = reload(linked_org, act(linked_org, users.directory_user_block, user=user, actor=Actor.user(admin)))
    assert operation.status == Status.FAILED and operation.last_error_code == "user_not_found"
    assert operation.failure_reason == users.USER_GONE
    assert operation.attempts == 1


def test_a_removed_user_is_refused_before_asking_microsoft(linked_org, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    with tenant_context(linked_org):
        DirectoryUser.objects.for_org(linked_org).filter(pk=user.pk).update(removed_at=timezone.now())
    for func in (users.directory_user_block, users.directory_user_password_reset):
        with pytest.raises(DirectoryActionRefused) as refused:
            act(linked_org, func, user=user, actor=Actor.user(admin))
        assert refused.value.code == "user_removed"


# --- offboarding -----------------------------------------------------------------------------------------------


def test_offboard_leaving_the_mailbox_for_deletion_removes_every_license(linked_org, emulator, graph, admin):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    operation = reload(linked_org, act(linked_org, offboard.directory_user_offboard, user=user,
                                       mailbox="delete", actor=Actor.user(admin)))
    assert operation.status == Status.SUCCEEDED, operation.last_error
    assert {"sign_in_blocked", "sessions_revoked", "licenses_removal_queued"} <= set(operation.milestones)
    remote = graph_user(graph, str(user.graph_id))
    assert remote["accountEnabled"] is False and remote["assignedLicenses"] == []
    with tenant_context(linked_org):
        states = list(LicenseAssignment.objects.for_org(linked_org).filter(user=user).values_list("state", flat=True))
    assert states == [State.REMOVED]
    assert operation.result["licenses_removed"] and operation.result["licenses_kept"] == []
    assert "30 days" in operation.result["mailbox_outcome"]
    # The removal went through the normal assignment path, audited as the admin who offboarded.
    assert "license.unassign_requested" in audit_actions(linked_org, actor_id=str(admin.pk))


@pytest.mark.parametrize("mailbox", ["keep", "shared"])
def test_offboard_keeping_the_mailbox_keeps_only_the_mailbox_license(linked_org, emulator, graph, admin, mailbox):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = licensed_user(linked_org, pool)
    with tenant_context(linked_org):
        exchange = TenantSku.objects.for_org(linked_org).get(sku_id=EXCHANGE_P1)
    exchange_plan = next(p["id"] for p in pool.service_plans if p["name"] == "EXCHANGE_S_STANDARD")
    # Premium with its mailbox plan turned off, and the mailbox from Exchange Online (Plan 1) instead.
    act(linked_org, assignment_services.license_assign, user=user, sku=pool, actor=Actor.user(admin),
        disabled_plans=[exchange_plan])
    act(linked_org, assignment_services.license_assign, user=user, sku=exchange, actor=Actor.user(admin))
    operation = reload(linked_org, act(linked_org, offboard.directory_user_offboard, user=user, mailbox=mailbox,
                                       actor=Actor.user(admin)))
    assert operation.status == Status.SUCCEEDED, operation.last_error
    remote = graph_user(graph, str(user.graph_id))
    assert [lic["skuId"] for lic in remote["assignedLicenses"]] == [str(EXCHANGE_P1)]
    with tenant_context(linked_org):
        states = dict(LicenseAssignment.objects.for_org(linked_org).filter(user=user).values_list("sku__sku_id",
                                                                                                   "state"))
    assert states == {pool.sku_id: State.REMOVED, EXCHANGE_P1: State.ASSIGNED}
    assert operation.result["licenses_kept"] == [exchange.label]
    if mailbox == "shared":
        assert operation.result["mailbox_outcome"].startswith("Not yet done by the portal")


def test_offboard_validates_the_choice_and_is_idempotent_while_queued(linked_org, admin, monkeypatch):
    run_sync(linked_org)
    user = licensed_user(linked_org, premium(linked_org))
    with pytest.raises(DirectoryActionRefused) as refused:
        act(linked_org, offboard.directory_user_offboard, user=user, mailbox="archive", actor=Actor.user(admin))
    assert refused.value.field == "mailbox"
    monkeypatch.setattr("licensing.provisioning.operation_dispatch", lambda **kwargs: None)
    first = act(linked_org, offboard.directory_user_offboard, user=user, mailbox="delete", actor=Actor.user(admin))
    again = act(linked_org, offboard.directory_user_offboard, user=user, mailbox="delete", actor=Actor.user(admin))
    assert again.pk == first.pk
    with pytest.raises(DirectoryActionRefused) as busy:
        act(linked_org, users.directory_user_unblock, user=user, actor=Actor.user(admin))
    assert busy.value.code == "offboarding"


def test_generated_passwords_meet_the_entra_policy():
    for _ in range(200):
        password = users.generate_temporary_password()
        assert len(password) == users.PASSWORD_LENGTH
        assert any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)
        assert not set(password) & set("0O1lI")
