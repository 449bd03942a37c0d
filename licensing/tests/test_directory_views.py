"""Dashboard pages and API for directory, assignments, bulk, usage, renewals and notifications."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.audit import AuditEvent
from core.tenancy import tenant_context
from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, Notification, ReductionProposal, TenantSku
from licensing.services import bulk as bulk_services

from . import directory_helpers
from .directory_helpers import SYSTEM, csv_upload, premium, run_sync
from .test_assignments import unlicensed_users

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org
owner = directory_helpers.owner


def url(name, org, **kwargs):
    return reverse(f"licensing:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def synced(linked_org):
    run_sync(linked_org)
    return linked_org


def test_pages_render_for_a_member(client, synced, owner):
    verified_client(client, owner)
    for name in ("licenses", "directory_users", "usage", "inactive", "renewals", "notifications", "bulk_new",
                 "licensing_settings", "notifications_bell", "directory_sync_status"):
        response = client.get(url(name, synced))
        assert response.status_code == 200, name
    # The usage preferences became part of the licensing settings: the old address leads there.
    moved = client.get(url("reporting_preferences", synced))
    assert moved.status_code == 302 and moved["Location"] == url("licensing_settings", synced)
    with tenant_context(synced):
        user = DirectoryUser.objects.for_org(synced).first()
    assert client.get(url("directory_user", synced, pk=user.pk)).status_code == 200
    response = client.get(url("report_export", synced, report="usage"))
    assert response.status_code == 200
    assert b"Purchased" in b"".join(response.streaming_content)


def test_licenses_page_query_count_does_not_grow(client, synced, owner):
    verified_client(client, owner)
    client.get(url("licenses", synced))
    with CaptureQueriesContext(connection) as first:
        client.get(url("licenses", synced))
    with tenant_context(synced):
        for n in range(5):
            TenantSku.objects.create(organization=synced, sku_id=uuid.uuid4(), sku_part_number=f"EXTRA{n}",
                                     purchased=3)
    with CaptureQueriesContext(connection) as second:
        client.get(url("licenses", synced))
    assert len(second) == len(first)


def test_the_users_page_checks_the_directory_for_changes_once_and_links_each_row(client, synced, owner):
    # The change check is an aggregate over the whole directory (licensing.selectors.directory_search): the
    # filter menus and the search share one.
    verified_client(client, owner)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url("directory_users", synced)).content.decode()
    checks = [q["sql"] for q in captured.captured_queries if 'MAX("licensing_directoryuser"."updated_at")' in q["sql"]]
    assert len(checks) == 1
    with tenant_context(synced):
        user = DirectoryUser.objects.for_org(synced).filter(removed_at__isnull=True).first()
    assert f'href="{url("directory_user", synced, pk=user.pk)}"' in page


def test_another_organisations_user_is_a_404(client, synced, owner):
    other = OrganizationFactory()
    stranger = MembershipFactory(organization=other, role=Role.OWNER).user
    verified_client(client, stranger)
    with tenant_context(synced):
        user = DirectoryUser.objects.for_org(synced).first()
    assert client.get(url("directory_user", synced, pk=user.pk)).status_code == 404
    assert client.get(url("directory_user", other, pk=user.pk)).status_code == 404


def test_viewer_cannot_assign(client, synced):
    viewer = MembershipFactory(organization=synced, role=Role.VIEWER).user
    verified_client(client, viewer)
    with tenant_context(synced):
        user = DirectoryUser.objects.for_org(synced).first()
    response = client.post(url("directory_user", synced, pk=user.pk), {"sku": str(premium(synced).pk)})
    assert response.status_code == 403


def test_assign_and_bulk_through_the_pages(client, synced, owner):
    verified_client(client, owner)
    pool = premium(synced)
    users = unlicensed_users(synced, pool, count=4)
    response = client.post(url("directory_user", synced, pk=users[0].pk), {"sku": str(pool.pk)})
    assert response.status_code == 302
    lines = ["upn"] + [u.user_principal_name for u in users[1:]] + ["ghost@nowhere.example"]
    response = client.post(url("bulk_new", synced), {"sku": str(pool.pk), "action": "assign",
                                                     "file": _named(csv_upload(lines))})
    assert response.status_code == 302
    job_url = response["Location"]
    page = client.get(job_url)
    assert b"No such user" in page.content
    assert client.post(job_url).status_code == 302
    # Nobody looks at the job again: recording the batch's results completed it, with an audit record.
    with tenant_context(synced):
        job = BulkJob.objects.for_org(synced).get()
        assert job.status == BulkJob.Status.COMPLETED
        assert LicenseAssignment.objects.for_org(synced).filter(sku=pool, state="assigned").count() == 24
        completed = AuditEvent.objects.get(action="license.bulk_completed", target_id=str(job.pk))
    assert completed.metadata == {"status": "completed", "succeeded": 3, "failed": 0}


def test_viewing_a_bulk_job_changes_nothing(client, synced, owner):
    verified_client(client, owner)
    pool = premium(synced)
    users = unlicensed_users(synced, pool, count=2)
    with tenant_context(synced):
        job = bulk_services.bulk_preview_csv(organization=synced, sku=pool, action="assign", actor=SYSTEM,
                                             upload=csv_upload([u.user_principal_name for u in users]))
        # A job marked running whose assignments are not in flight: only the outbox handler may end it.
        BulkJob.objects.for_org(synced).filter(pk=job.pk).update(status=BulkJob.Status.RUNNING)
        before = BulkJob.objects.for_org(synced).values().get(pk=job.pk)
    assert client.get(url("bulk_job", synced, pk=job.pk)).status_code == 200
    api = verified_client(Client(headers={"X-Organization": synced.slug}), owner)
    assert api.get(f"/api/v1/license-bulk-jobs/{job.pk}/").json()["status"] == "running"
    with tenant_context(synced):
        assert BulkJob.objects.for_org(synced).values().get(pk=job.pk) == before
        assert not AuditEvent.objects.filter(action="license.bulk_completed", target_id=str(job.pk)).exists()


def _named(buffer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("users.csv", buffer.getvalue(), content_type="text/csv")


def test_notifications_mark_read(client, synced, owner):
    verified_client(client, owner)
    with tenant_context(synced):
        Notification.objects.create(organization=synced, recipient=owner, kind="assignment", title="Hello",
                                    dedupe_key="k1")
    assert b"Hello" in client.get(url("notifications_bell", synced)).content
    client.post(url("notifications_read", synced))
    with tenant_context(synced):
        assert Notification.objects.for_org(synced).get().read_at is not None


@pytest.fixture
def api(client, synced):
    from accounts.api_keys import api_key_create

    membership_user = MembershipFactory(organization=synced, role=Role.LICENSE_ADMIN).user
    with tenant_context(synced):
        _, secret = api_key_create(organization=synced, name="ci", role=Role.LICENSE_ADMIN, expires_at=None,
                                   actor=membership_user)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


def test_api_directory_search_assign_and_bulk_dry_run(api, synced):
    pool = premium(synced)
    user = unlicensed_users(synced, pool, count=1)[0]
    listed = api.get("/api/v1/directory-users/", {"upn": user.user_principal_name.upper()})
    assert listed.status_code == 200, listed.content
    assert [u["id"] for u in listed.json()["results"]] == [str(user.pk)]
    created = api.post("/api/v1/license-assignments/", {"user": str(user.pk), "sku": str(pool.pk)},
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY="assign-1")
    assert created.status_code == 202, created.content
    again = api.post("/api/v1/license-assignments/", {"user": str(user.pk), "sku": str(pool.pk)},
                     content_type="application/json", HTTP_IDEMPOTENCY_KEY="assign-1")
    assert again.json()["id"] == created.json()["id"]
    others = unlicensed_users(synced, pool, count=6)
    dry = api.post("/api/v1/license-bulk-jobs/", {"sku": str(pool.pk), "users": [u.user_principal_name for u in
                                                                                 others] + ["bad"]},
                   content_type="application/json")
    assert dry.status_code == 200, dry.content
    body = dry.json()
    assert (body["change_rows"], body["invalid_rows"], body["seats_needed"], body["seats_short"]) == (6, 1, 6, 2)
    assert body["rows"][-1]["error_code"] == "bad_format"
    refused = api.post(f"/api/v1/license-bulk-jobs/{body['id']}/confirm/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "seats_exhausted"
    assert api.get("/api/v1/usage/").status_code == 200
    assert api.get("/api/v1/usage/history/").status_code == 200
    assert api.get("/api/v1/renewals/").status_code == 200


def test_api_assigns_again_a_license_given_back_and_returns_an_existing_one(api, synced):
    pool = premium(synced)
    user = unlicensed_users(synced, pool, count=1)[0]
    body = {"user": str(user.pk), "sku": str(pool.pk)}
    first = api.post("/api/v1/license-assignments/", body, content_type="application/json")
    assert first.status_code == 202, first.content
    with tenant_context(synced):
        LicenseAssignment.objects.for_org(synced).filter(pk=first.json()["id"]).update(
            state=LicenseAssignment.State.ASSIGNED
        )
    # The same assignment posted again (no idempotency key): the row as it stands, not a uniqueness error.
    again = api.post("/api/v1/license-assignments/", body, content_type="application/json")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"] and again.json()["state"] == "assigned"
    # Given back (Microsoft confirmed the removal), then assigned again: the same row is reused.
    with tenant_context(synced):
        LicenseAssignment.objects.for_org(synced).filter(pk=first.json()["id"]).update(
            state=LicenseAssignment.State.REMOVED, removed_at=timezone.now()
        )
    back = api.post("/api/v1/license-assignments/", body, content_type="application/json")
    assert back.status_code == 202, back.content
    assert back.json()["id"] == first.json()["id"] and back.json()["state"] == "pending"
    with tenant_context(synced):
        assert LicenseAssignment.objects.for_org(synced).filter(user=user, sku=pool).count() == 1
    # Bad input is still refused in the one error shape.
    refused = api.post("/api/v1/license-assignments/", {"user": "nope", "sku": str(pool.pk)},
                       content_type="application/json")
    assert refused.status_code == 400 and set(refused.json()["error"]["fields"]) == {"user"}


def test_seats_bought_after_the_dry_run_enable_confirm(client, synced, owner):
    verified_client(client, owner)
    pool = premium(synced)  # 25 purchased, 20 assigned: 5 free
    users = unlicensed_users(synced, pool, count=7)
    response = client.post(url("bulk_new", synced), {
        "sku": str(pool.pk), "action": "assign",
        "file": _named(csv_upload(["upn"] + [u.user_principal_name for u in users])),
    })
    job_url = response["Location"]
    page = client.get(job_url).content.decode()
    assert "2 seats short" in page and 'disabled>Confirm' in page
    # Two seats bought meanwhile (the seat refresh after checkout updates the pool).
    with tenant_context(synced):
        TenantSku.objects.for_org(synced).filter(pk=pool.pk).update(purchased=27)
    page = client.get(job_url).content.decode()
    assert "seats short" not in page and 'disabled>Confirm' not in page
    assert "<strong>7</strong> free" in page
    with tenant_context(synced):
        assert BulkJob.objects.for_org(synced).get().seats_available == 5  # counted for the page, not saved
    assert client.post(job_url).status_code == 302
    with tenant_context(synced):
        job = BulkJob.objects.for_org(synced).get()
        # Confirmed: all seven reserved at once (the emulator's tenant really has 25, so Graph refuses two).
        assert job.status != BulkJob.Status.PREVIEW
        assert LicenseAssignment.objects.for_org(synced).filter(bulk_job=job).count() == 7


def test_buy_more_adds_seats_to_the_existing_subscription_else_opens_the_product(client, synced, owner):
    from licensing.services.assignments import buy_more_urls
    from licensing.tests.core.factories import SkuFactory, SubscriptionFactory

    pool = premium(synced)
    sku = SkuFactory(provisioning_id=str(pool.sku_id).upper())  # Graph and the catalog differ in case
    with tenant_context(synced):
        assert buy_more_urls(synced, {pool: 3})[pool.pk] == url("product", synced, pk=sku.product.pk) + "?quantity=3"
        subscription = SubscriptionFactory(organization=synced, sku=sku, quantity=25)
        assert buy_more_urls(synced, {pool: 3})[pool.pk] == (
            url("subscription", synced, pk=subscription.pk) + "?quantity=28#change-seats"
        )
        other = TenantSku.objects.create(organization=synced, sku_id=uuid.uuid4(), display_name="Unknown")
        assert buy_more_urls(synced, {other: 1})[other.pk] == url("catalog", synced)
        # The pool is full: the Licenses page links to the subscription, and the quantity arrives prefilled.
        TenantSku.objects.for_org(synced).filter(pk=pool.pk).update(purchased=20)
    verified_client(client, owner)
    page = client.get(url("licenses", synced)).content.decode()
    assert f'href="{url("subscription", synced, pk=subscription.pk)}?quantity=26#change-seats"' in page
    form = client.get(url("subscription", synced, pk=subscription.pk) + "?quantity=26").content.decode()
    assert 'name="seats-quantity" id="id_seats-quantity" min="1" value="26"' in form


def test_tampered_ids_are_simply_not_found(client, synced, owner):
    verified_client(client, owner)
    assert client.post(url("bulk_from_selection", synced), {"target_sku": "not-a-uuid"}).status_code == 404
    assert client.post(url("reduction_propose", synced), {"sku": "1'; --", "reduce_by": "1"}).status_code == 404
    with tenant_context(synced):
        Notification.objects.create(organization=synced, recipient=owner, kind="assignment", title="Hi",
                                    dedupe_key="k1")
    assert client.post(url("notifications_read", synced), {"notification": "nope"}).status_code == 302
    response = client.post(url("reclaim", synced), {"assignment": ["nope"]})
    assert response.status_code == 302
    with tenant_context(synced):
        assert Notification.objects.for_org(synced).get().read_at is None
        assert not BulkJob.objects.for_org(synced).exists()


def test_a_selection_that_matches_nobody_gets_a_message_not_an_error(client, synced, owner):
    verified_client(client, owner)
    pool = premium(synced)
    response = client.post(url("bulk_from_selection", synced),
                           {"target_sku": str(pool.pk), "action": "assign", "q": "nobody-is-called-this"}, follow=True)
    assert response.status_code == 200
    assert "No directory users match this selection" in response.content.decode()
    with tenant_context(synced):
        assert not BulkJob.objects.for_org(synced).exists()


def test_a_reduction_that_is_not_a_number_gets_a_clear_message(client, synced, owner):
    verified_client(client, owner)
    with tenant_context(synced):
        sku = TenantSku.objects.for_org(synced).first()
    for value in ("three", "1.5", "", "9" * 40):
        response = client.post(url("reduction_propose", synced), {"sku": str(sku.pk), "reduce_by": value}, follow=True)
        assert response.status_code == 200, value
        page = response.content.decode()
        assert "invalid literal" not in page
        assert "seats to drop at renewal" in page, value
    with tenant_context(synced):
        assert not ReductionProposal.objects.for_org(synced).exists()


def test_csv_exports_keep_directory_text_from_running_as_a_formula(client, synced, owner):
    verified_client(client, owner)
    with tenant_context(synced):
        assignment = LicenseAssignment.objects.for_org(synced).filter(state="assigned").select_related("user").first()
        user = assignment.user
        user.display_name = '=HYPERLINK("https://attacker.example","Click")'
        user.last_sign_in_at = timezone.now() - timedelta(days=400)
        user.save()
    body = b"".join(client.get(url("report_export", synced, report="inactive")).streaming_content).decode()
    assert "'=HYPERLINK(" in body
    assert not any(cell.startswith("=") for line in csv.reader(io.StringIO(body)) for cell in line)
