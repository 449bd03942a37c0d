"""The organisation's activity log page and its CSV export (security.views)."""

import csv
import io
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from accounts.tests.factories import OrganizationFactory, UserFactory
from core.audit import Actor, audit_record
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation, TenantSku
from licensing.tests.core.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

URL = "/o/contoso/security/activity/"
EXPORT_URL = "/o/contoso/security/activity/export.csv"


@pytest.fixture
def other_org():
    return OrganizationFactory(legal_name="Other Org", slug="other")


def record(org, action, actor=None):
    return audit_record(actor=actor or Actor.system("tests"), action=action, organization=org)


def test_shows_only_this_organisations_events(owner, organization, other_org):
    client, user = owner
    record(organization, "subscription.purchased", Actor.user(user))
    record(other_org, "secret.other_org_thing")
    html = client.get(URL).content.decode()
    assert "Subscription purchased" in html
    assert user.full_name in html and user.email in html
    assert "other_org_thing" not in html and "Secret" not in html


def test_another_orgs_action_cannot_be_used_as_filter(owner, organization, other_org):
    client, _ = owner
    record(organization, "member.invited")
    record(other_org, "secret.leak")
    html = client.get(URL + "?action=secret.leak").content.decode()
    assert 'value="secret.leak"' not in html
    assert "Member invited" in html  # the unknown filter value is ignored, not applied


def test_filters_by_action_and_actor_type(owner, organization):
    client, user = owner
    record(organization, "member.invited", Actor.user(user))
    record(organization, "tenant.linked")
    html = client.get(URL + "?action=member.invited").content.decode()
    assert "Member invited" in html.split('id="activity-results"')[1]
    assert "Tenant linked" not in html.split('id="activity-results"')[1]
    html = client.get(URL + "?actor_type=system").content.decode()
    assert "Tenant linked" in html.split('id="activity-results"')[1]
    assert "Member invited" not in html.split('id="activity-results"')[1]


def test_search_by_words_and_by_exact_member_email(owner, organization):
    client, user = owner
    someone = UserFactory(full_name="Ana Writer")
    record(organization, "invoice.paid", Actor.user(someone))
    record(organization, "tenant.linked", Actor.user(user))
    results = client.get(URL + "?q=invoice").content.decode().split('id="activity-results"')[1]
    assert "Invoice paid" in results and "Tenant linked" not in results
    results = client.get(URL, {"q": someone.email}).content.decode().split('id="activity-results"')[1]
    assert "Invoice paid" in results and "Tenant linked" not in results


def test_bad_parameters_never_fail(owner, organization):
    client, _ = owner
    record(organization, "tenant.linked")
    for query in [
        "?sort=hash",
        "?sort=-previous_hash",
        "?page=zzz",
        "?page=99999",
        "?actor_type=root",
        "?period=1y",
        "?q=" + "%" * 500,
    ]:
        assert client.get(URL + query).status_code == 200, query


def test_control_characters_in_the_search_are_spaces_on_the_page_and_in_the_export(owner, organization):
    """A NUL byte reaches PostgreSQL as an error unless removed; the search works without it."""
    client, _ = owner
    record(organization, "tenant.linked")
    record(organization, "member.invited")
    results = client.get(URL + "?q=tenant%00").content.decode().split('id="activity-results"')[1]
    assert "Tenant linked" in results and "Member invited" not in results
    response = client.get(EXPORT_URL + "?q=ab%00cd")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "occurred_at_utc" and len(rows) == 1  # matched nothing, and finished
    response = client.get(EXPORT_URL + "?q=tenant%00%0A")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r[1] for r in rows[1:]] == ["tenant.linked"]


def test_paginates_25_per_page(owner, organization):
    client, _ = owner
    for i in range(30):
        record(organization, f"thing.n{i:02d}")
    html = client.get(URL).content.decode()
    assert "Showing 1&ndash;25 of 30" in html
    results = html.split('id="activity-results"')[1]
    assert "Thing n29" in results and "Thing n00" not in results
    results = client.get(URL + "?page=2").content.decode().split('id="activity-results"')[1]
    assert "Thing n00" in results


def test_htmx_request_gets_only_the_results_region(owner, organization):
    client, _ = owner
    record(organization, "tenant.linked")
    response = client.get(URL + "?sort=action", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="activity-results")
    html = response.content.decode()
    assert html.strip().startswith('<div id="activity-results"')
    assert "<html" not in html and "<nav" not in html
    assert "HX-Request" in response["Vary"]
    # A history restore asks for the full page.
    full = client.get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true", HTTP_HX_TARGET="x")
    assert "<html" in full.content.decode()


def test_actors_are_loaded_in_one_batch(owner, organization):
    client, _ = owner
    few = [UserFactory() for _ in range(2)]
    for user in few:
        record(organization, "a.b", Actor.user(user))
    client.get(URL)  # warm the data-key cache: decryption keys are cached per process
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    many = [UserFactory() for _ in range(20)]
    for user in many:
        record(organization, "a.b", Actor.user(user))
    client.get(URL)
    with CaptureQueriesContext(connection) as large:
        client.get(URL)
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.parametrize("role", [Role.VIEWER])
def test_requires_audit_permission(member_client, organization, role):
    client, _ = member_client(role)
    assert client.get(URL).status_code == 403
    assert client.get(EXPORT_URL).status_code == 403


def test_non_member_gets_404(owner, other_org):
    client, _ = owner
    assert client.get("/o/other/security/activity/").status_code == 404
    assert client.get("/o/other/security/activity/export.csv").status_code == 404


def test_csv_export_is_filtered_scoped_and_streamed(owner, organization, other_org):
    client, user = owner
    record(organization, "member.invited", Actor.user(user))
    record(organization, "=cmd|' /C calc'!A0")  # a formula must not run in a spreadsheet
    record(organization, "tenant.linked")
    record(other_org, "secret.leak")
    response = client.get(EXPORT_URL + "?actor_type=user")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["occurred_at_utc", "action", "actor_type", "actor"]
    assert [r[1] for r in rows[1:]] == ["member.invited"]
    assert rows[1][3] == user.full_name and rows[1][4] == user.email

    everything = client.get(EXPORT_URL)
    rows = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))
    actions = [r[1] for r in rows[1:]]
    assert "secret.leak" not in actions
    assert actions[0] == "tenant.linked"  # newest first
    assert "'=cmd|' /C calc'!A0" in actions


def test_csv_export_covers_more_than_one_batch(owner, organization, monkeypatch):
    from security import views

    monkeypatch.setattr(views, "EXPORT_BATCH_SIZE", 3)
    client, _ = owner
    for i in range(8):
        record(organization, f"thing.{i}")
    response = client.get(EXPORT_URL)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r[1] for r in rows[1:]] == [f"thing.{i}" for i in reversed(range(8))]


def test_htmx_refresh_also_updates_the_export_link(owner, organization):
    client, _ = owner
    record(organization, "tenant.linked")
    response = client.get(URL + "?q=tenant", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="activity-results")
    html = response.content.decode()
    assert 'id="activity-export"' in html and 'hx-swap-oob="true"' in html
    assert 'href="/o/contoso/security/activity/export.csv?q=tenant"' in html


def test_events_name_what_they_touched_and_link_to_it(owner, organization):
    """Not "ProvisioningOperation c19db454": the operation in words, with what it acted on, linked."""
    client, _ = owner
    with tenant_context(organization):
        sku = TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(),
                                       display_name="Business Premium", purchased=5)
        person = DirectoryUser.objects.create(organization=organization, graph_id=uuid.uuid4(),
                                              user_principal_name="adele@x.example", display_name="Adele Vance")
        assignment = LicenseAssignment.objects.create(organization=organization, user=person, sku=sku)
        operation = ProvisioningOperation.objects.create(organization=organization, kind="license.assign",
                                                         target_type="LicenseAssignment", target_id=str(assignment.pk))
        subscription = SubscriptionFactory(organization=organization, product_title="Exchange Online (Plan 1)")
        gone = ProvisioningOperation.objects.create(organization=organization, kind="subscription.cancel")
    audit_record(actor=Actor.system("tests"), action="operation.succeeded", organization=organization,
                 target=operation)
    audit_record(actor=Actor.system("tests"), action="subscription.updated", organization=organization,
                 target=subscription)
    audit_record(actor=Actor.system("tests"), action="operation.failed", organization=organization, target=gone)
    with tenant_context(organization):
        ProvisioningOperation.objects.for_org(organization).filter(pk=gone.pk).delete()
    html = client.get(URL).content.decode()
    assert f'href="/o/contoso/operations/{operation.pk}/">License assign: Business Premium for Adele Vance</a>' in html
    assert f'href="/o/contoso/subscriptions/{subscription.pk}/">Exchange Online (Plan 1)</a>' in html
    assert "Microsoft operation (deleted)" in html
    assert "ProvisioningOperation " not in html and "LicenseAssignment " not in html
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(EXPORT_URL).streaming_content).decode())))
    assert "License assign: Business Premium for Adele Vance" in {r["target"] for r in rows}
