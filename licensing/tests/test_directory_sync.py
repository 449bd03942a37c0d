"""Directory sync against the emulator: streamed pages, skip-unchanged, removals, privacy locks."""

from __future__ import annotations

import copy
import itertools
import threading

import pytest

from core.crypto import blind_index
from core.field_locks import lock_field
from core.tenancy import tenant_context
from licensing.models import DirectorySync, DirectoryUser, LicenseAssignment
from licensing.models.directory import MAIL_INDEX, UPN_INDEX

from . import directory_helpers
from .directory_helpers import FABRIKAM, premium, run_sync

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org


def tenant_user_count(graph) -> int:
    return sum(len(page) for page in graph.graph.iter_user_pages(tenant_id=FABRIKAM, select=["id"]))


def failing_from_the_second_listing(graph, emulator, organization):
    """The sync's Graph seam, with Graph failing the users listing from its second request on, for longer than
    the client's retry budget. Set off by the request itself, whichever thread sends it: the sync fetches a page
    while it writes the one before, so a fault set after the first page was handed over would come too late."""
    from licensing.services import directory as directory_services

    listings = itertools.count(1)
    send = graph.graph._call

    def call(method, tenant_id, path, operation, **kwargs):
        if operation == "users.list" and next(listings) == 2:
            emulator.fault("/graph/v1.0/users", status=503, times=50)
        return send(method, tenant_id, path, operation, **kwargs)

    client = copy.copy(graph.graph)
    client._call = call
    return directory_services.TenantGraph(graph=client, organization=organization, tenant_id=FABRIKAM)


def reading_ahead() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("graph-pages")]


def test_sync_reads_users_skus_and_assignments(linked_org, graph):
    sync = run_sync(linked_org)
    assert sync.status == DirectorySync.Status.SUCCEEDED, sync.error_message
    assert sync.users_seen == sync.users_created == tenant_user_count(graph) >= 300
    pool = premium(linked_org)
    assert pool.purchased == 25
    with tenant_context(linked_org):
        assert LicenseAssignment.objects.for_org(linked_org).filter(sku=pool, state="assigned").count() == 20
        user = DirectoryUser.objects.for_org(linked_org).first()
        # Encrypted at rest, found through the blind index.
        index = blind_index(UPN_INDEX, user.user_principal_name)
        found = DirectoryUser.objects.for_org(linked_org).get(upn_index=index)
        assert found.pk == user.pk
        assert DirectoryUser.objects.for_org(linked_org).filter(last_sign_in_at__isnull=False).exists()


def test_second_sync_skips_unchanged_and_marks_deleted_users(linked_org, emulator, graph):
    run_sync(linked_org)
    with tenant_context(linked_org):
        victim = DirectoryUser.objects.for_org(linked_org).first()
    emulator_session = emulator.session
    token_client = graph.graph
    token_client._call("DELETE", FABRIKAM, f"/users/{victim.graph_id}", "users.delete")
    second = run_sync(linked_org)
    assert second.users_unchanged == tenant_user_count(graph) == second.users_seen
    assert second.users_removed == 1
    with tenant_context(linked_org):
        victim.refresh_from_db()
    assert victim.removed_at is not None
    assert emulator_session is not None


def test_sync_of_a_thousand_more_users_pages_through_every_one(linked_org, emulator, graph):
    emulator.bulk_users(FABRIKAM, 1000)
    expected = tenant_user_count(graph)
    emulator.clear_requests_log()
    sync = run_sync(linked_org)
    assert sync.status == DirectorySync.Status.SUCCEEDED
    assert sync.users_seen == expected >= 1300
    assert sync.pages == 3  # 500 a page: Graph's cap when signInActivity is selected
    pages = emulator.requests_log(method="GET", path="/graph/v1.0/users")
    assert len([p for p in pages if p["status"] == 200]) == 3
    assert all("top=500" in p["query"].replace("%24", "$") for p in pages)
    with tenant_context(linked_org):
        assert DirectoryUser.objects.for_org(linked_org).count() == expected


def test_a_locked_field_survives_a_later_sync(linked_org, graph):
    run_sync(linked_org)
    with tenant_context(linked_org):
        user = DirectoryUser.objects.for_org(linked_org).first()
        user.job_title = "Corrected title"
        user.save()
        lock_field(organization=linked_org, model=DirectoryUser, object_id=user.pk, field_name="job_title",
                   reason="DSAR correction")
    graph.graph._call("PATCH", FABRIKAM, f"/users/{user.graph_id}", "users.update",
                      json={"jobTitle": "Overwritten by Graph", "displayName": "New Name"})
    run_sync(linked_org)
    with tenant_context(linked_org):
        user = DirectoryUser.objects.for_org(linked_org).get(pk=user.pk)
    assert user.job_title == "Corrected title"
    assert user.display_name == "New Name"


def test_a_resync_rewrites_only_the_changed_users(linked_org, graph):
    run_sync(linked_org)
    with tenant_context(linked_org):
        changed, untouched = DirectoryUser.objects.for_org(linked_org).order_by("created_at", "id")[:2]
        before = dict(DirectoryUser.objects.for_org(linked_org).filter(pk=untouched.pk)
                      .values("display_name", "mail_index", "updated_at").get())
    mail = f"renamed.{changed.graph_id.hex[:8]}@fabrikamdemo.onmicrosoft.com"
    graph.graph._call("PATCH", FABRIKAM, f"/users/{changed.graph_id}", "users.update",
                      json={"mail": mail, "displayName": "Renamed Person"})
    second = run_sync(linked_org)
    assert (second.users_updated, second.users_created) == (1, 0)
    assert second.users_unchanged == second.users_seen - 1
    with tenant_context(linked_org):
        # The new address is encrypted, readable and found through its (re-computed) blind index.
        found = DirectoryUser.objects.for_org(linked_org).get(mail_index=blind_index(MAIL_INDEX, mail))
        after = dict(DirectoryUser.objects.for_org(linked_org).filter(pk=untouched.pk)
                     .values("display_name", "mail_index", "updated_at").get())
    assert found.pk == changed.pk and (found.display_name, found.mail) == ("Renamed Person", mail)
    assert found.updated_at > changed.updated_at  # the directory search sees the change
    assert after == before  # not re-encrypted, not touched


def test_a_second_request_joins_the_sync_in_flight(linked_org):
    from licensing.services.directory import directory_sync_request

    from .directory_helpers import SYSTEM

    with tenant_context(linked_org):
        first = DirectorySync.objects.create(organization=linked_org)
        again = directory_sync_request(organization=linked_org, actor=SYSTEM)
    assert again.pk == first.pk


def test_a_sync_that_fails_on_the_second_page_resumes_there_when_redelivered(linked_org, emulator, graph):
    from licensing.microsoft import errors as ms
    from licensing.services import directory as directory_services

    emulator.bulk_users(FABRIKAM, 1000)
    expected = tenant_user_count(graph)

    with tenant_context(linked_org):
        sync = DirectorySync.objects.create(organization=linked_org, trigger=DirectorySync.Trigger.MANUAL)
    failing = failing_from_the_second_listing(graph, emulator, linked_org)
    with pytest.raises(ms.TransientFailure):
        directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk, graph=failing)
    with tenant_context(linked_org):
        sync.refresh_from_db()
    # Still running (the task retries it), one page written and the link to the next one kept.
    assert sync.status == DirectorySync.Status.RUNNING and sync.pages == 1 and sync.users_seen == 500
    assert "skiptoken" in sync.next_link.lower()

    emulator.clear_faults()
    emulator.clear_requests_log()
    # The redelivered task: no fault this time.
    sync = directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk)
    assert sync.status == DirectorySync.Status.SUCCEEDED, sync.error_message
    assert sync.resumed == 1 and sync.pages == 3 and sync.next_link == ""
    assert sync.users_seen == expected and sync.users_removed == 0
    listed = [r for r in emulator.requests_log(method="GET", path="/graph/v1.0/users") if r["status"] == 200]
    assert len(listed) == 2  # the second and third pages: the first was not listed again
    with tenant_context(linked_org):
        assert DirectoryUser.objects.for_org(linked_org).filter(removed_at__isnull=True).count() == expected


def test_a_run_continued_after_a_lost_worker_leaves_removals_to_the_next_run(linked_org, emulator, graph):
    from licensing.microsoft import errors as ms
    from licensing.services import directory as directory_services

    emulator.bulk_users(FABRIKAM, 1000)
    run_sync(linked_org)
    with tenant_context(linked_org):
        victim = DirectoryUser.objects.for_org(linked_org).order_by("created_at", "id").first()
    graph.graph._call("DELETE", FABRIKAM, f"/users/{victim.graph_id}", "users.delete")

    with tenant_context(linked_org):
        sync = DirectorySync.objects.create(organization=linked_org, trigger=DirectorySync.Trigger.MANUAL)
    failing = failing_from_the_second_listing(graph, emulator, linked_org)
    with pytest.raises(ms.TransientFailure):
        directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk, graph=failing)
    emulator.clear_faults()
    continued = directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk)
    # This process did not see the first page listed, so it cannot tell who is gone.
    assert continued.status == DirectorySync.Status.SUCCEEDED and continued.users_removed == 0
    assert run_sync(linked_org).users_removed == 1
    with tenant_context(linked_org):
        victim.refresh_from_db()
        assert victim.removed_at is not None
        assert DirectoryUser.objects.for_org(linked_org).filter(removed_at__isnull=True).count() == (
            tenant_user_count(graph))


def test_an_expired_cursor_lists_from_the_start_and_a_foreign_link_is_refused(linked_org, graph):
    from licensing.services import directory as directory_services

    base = graph.graph.base_url
    with pytest.raises(ValueError):
        next(graph.graph.iter_user_page_links(tenant_id=FABRIKAM, start_link="https://attacker.example/users"))
    with tenant_context(linked_org):
        sync = DirectorySync.objects.create(organization=linked_org, status=DirectorySync.Status.RUNNING,
                                            next_link=f"{base}/users?$skiptoken=expired")
    sync = directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk)
    assert sync.status == DirectorySync.Status.SUCCEEDED, sync.error_message
    assert sync.users_seen == tenant_user_count(graph)


def test_stored_fingerprints_are_the_keyed_hash_of_the_users_graph_json(linked_org, graph):
    """Rows written before the page-level fingerprinter keep matching: a resync after an upgrade rewrites no one."""
    import json

    from licensing.services.directory import SOURCE_HASH_PURPOSE, USER_SELECT

    run_sync(linked_org)
    listing = graph.graph.iter_user_pages(tenant_id=FABRIKAM, select=[*USER_SELECT, "signInActivity"], top=500)
    payloads = {user.raw["id"]: user.raw for page in listing for user in page}
    with tenant_context(linked_org):
        users = list(DirectoryUser.objects.for_org(linked_org).order_by("created_at", "id")[:25])
    assert len(users) == 25
    for user in users:
        payload = payloads[str(user.graph_id)]
        relevant = {key: payload.get(key) for key in (*USER_SELECT, "signInActivity")}
        relevant["org"] = str(linked_org.pk)
        assert user.source_hash == blind_index(SOURCE_HASH_PURPOSE, json.dumps(relevant, sort_keys=True, default=str))


def test_a_page_is_matched_to_its_stored_users_only(linked_org, graph):
    """The page lookup returns the listed users of this organisation, whichever order the keys come in."""
    from core.crypto import blind_index as index_of
    from licensing.models.directory import GRAPH_ID_INDEX
    from licensing.services.directory.upsert import _stored_fingerprints

    run_sync(linked_org)
    with tenant_context(linked_org):
        users = list(DirectoryUser.objects.for_org(linked_org).order_by("created_at", "id")[:3])
        keys = [index_of(GRAPH_ID_INDEX, str(u.graph_id)) for u in reversed(users)] + ["0" * 64]
        found = _stored_fingerprints(linked_org, keys)
    assert found == {u.graph_id_index: (u.pk, u.source_hash, u.removed_at) for u in users}


def test_a_page_fetched_ahead_fails_on_the_next_that_asks_for_it_and_leaves_no_thread(linked_org, emulator, graph):
    from licensing.microsoft import errors as ms
    from licensing.services.directory import USER_SELECT

    emulator.bulk_users(FABRIKAM, 1000)
    pages = failing_from_the_second_listing(graph, emulator, linked_org).user_page_links(
        select=USER_SELECT, page_size=999
    )
    users, following = next(pages)  # the first page is handed over whole while the second is being fetched
    assert len(users) == 500 and "skiptoken" in following.lower()
    with pytest.raises(ms.TransientFailure):
        next(pages)
    failed = [r for r in emulator.requests_log(method="GET", path="/graph/v1.0/users") if r["status"] == 503]
    assert len(failed) == graph.http.retry_budget  # retried as before, in the fetching thread
    assert reading_ahead() == []


def test_a_throttled_page_fetched_ahead_waits_its_retry_after_and_the_listing_goes_on(
    linked_org, emulator, graph, sleeps
):
    from licensing.services.directory import USER_SELECT

    emulator.bulk_users(FABRIKAM, 1000)
    expected = tenant_user_count(graph)
    emulator.clear_requests_log()
    emulator.fault("/graph/v1.0/users", status=429, retryAfter=2, times=2)
    listing = directory_services_graph(graph, linked_org).user_page_links(select=USER_SELECT, page_size=999)
    assert sum(len(users) for users, _ in listing) == expected
    statuses = [r["status"] for r in emulator.requests_log(method="GET", path="/graph/v1.0/users")]
    assert statuses == [429, 429, 200, 200, 200]
    assert list(sleeps) == [2, 2]  # each Retry-After waited out, by the fetching thread
    assert reading_ahead() == []


def test_a_token_that_fails_for_the_page_ahead_fails_on_the_next_that_asks_for_it(linked_org, emulator, graph,
                                                                                   monkeypatch):
    from licensing.microsoft import errors as ms
    from licensing.services.directory import USER_SELECT

    emulator.bulk_users(FABRIKAM, 1000)
    tokens = itertools.count(1)
    token_for = graph.graph._token_for

    def failing_from_the_second(tenant_id):
        if next(tokens) >= 2:
            raise ms.MicrosoftError("consent revoked", code="invalid_grant")
        return token_for(tenant_id)

    monkeypatch.setattr(graph.graph, "_token_for", failing_from_the_second)
    pages = directory_services_graph(graph, linked_org).user_page_links(select=USER_SELECT, page_size=999)
    users, _ = next(pages)  # handed over, to be written, although the next page's token already failed
    assert len(users) == 500
    with pytest.raises(ms.MicrosoftError, match="consent revoked"):
        next(pages)
    assert reading_ahead() == []


def test_a_listing_closed_halfway_waits_for_the_page_in_flight(linked_org, emulator, graph):
    from licensing.services.directory import USER_SELECT

    emulator.bulk_users(FABRIKAM, 1000)
    pages = directory_services_graph(graph, linked_org).user_page_links(select=USER_SELECT, page_size=999)
    next(pages)
    pages.close()  # as the sync does when writing a page fails
    assert reading_ahead() == []


def test_a_sync_whose_write_fails_leaves_no_thread_behind(linked_org, emulator, graph, monkeypatch):
    from licensing.services import directory as directory_services

    emulator.bulk_users(FABRIKAM, 1000)

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("licensing.services.directory.sync.directory_user_upsert_from_graph", broken)
    with tenant_context(linked_org):
        sync = DirectorySync.objects.create(organization=linked_org, trigger=DirectorySync.Trigger.MANUAL)
    with pytest.raises(RuntimeError):
        directory_services.directory_sync_run(organization=linked_org, sync_id=sync.pk)
    assert reading_ahead() == []
    with tenant_context(linked_org):
        sync.refresh_from_db()
    assert sync.status == DirectorySync.Status.FAILED and sync.pages == 0


def directory_services_graph(graph, organization):
    from licensing.services import directory as directory_services

    return directory_services.TenantGraph(graph=graph.graph, organization=organization, tenant_id=FABRIKAM)
