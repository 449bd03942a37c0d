"""Directory search over encrypted fields (docs/decisions/013-directory-search.md): part of a name, UPN or
e-mail, filters, sorting, row selection, and an index that follows every change."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.crypto import blind_index
from core.tenancy import tenant_context
from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, TenantSku
from licensing.models.directory import UPN_INDEX
from licensing.selectors import directory_search

pytestmark = pytest.mark.django_db

PEOPLE = [
    # name, upn, mail, department, location, days since sign-in
    ("Adele Vance", "adelev@fabrikam.example", "adele.vance@fabrikam.example", "Retail", "US", 2),
    ("Alex Wilber", "alexw@fabrikam.example", "alex@fabrikam.example", "Marketing", "GB", 45),
    ("Åsa Öberg", "asa@fabrikam.example", "", "Retail", "SE", 100),
    ("Zoë Déjà", "zoe@fabrikam.example", "zoe.deja@fabrikam.example", "", "", None),
]


@pytest.fixture(autouse=True)
def fresh_index():
    directory_search.forget()
    yield
    directory_search.forget()


@pytest.fixture
def org():
    organization = OrganizationFactory()
    now = timezone.now()
    with tenant_context(organization):
        pool = TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), display_name="Business Premium",
                                        purchased=25)
        for name, upn, mail, department, location, days in PEOPLE:
            user = DirectoryUser.objects.create(
                organization=organization, graph_id=uuid.uuid4(), display_name=name, user_principal_name=upn,
                mail=mail or None, department=department or None, usage_location=location or None,
                has_usage_location=bool(location), last_sign_in_at=now - timedelta(days=days) if days else None)
            DirectoryUser.objects.for_org(organization).filter(pk=user.pk).update(created_at=now - timedelta(days=400))
            if name != "Alex Wilber":
                LicenseAssignment.objects.create(organization=organization, user=user, sku=pool, state="assigned")
    organization.pool = pool
    return organization


def names(organization, **filters) -> list[str]:
    with tenant_context(organization):
        pks = directory_search.search_directory(organization, **filters)
        return [u.display_name for u in directory_search.directory_rows(organization, pks)]


@pytest.mark.parametrize("query, expected", [
    ("ade", {"Adele Vance"}),                 # part of a name
    ("VANCE", {"Adele Vance"}),               # any case
    ("alexw@", {"Alex Wilber"}),              # part of a UPN
    ("zoe.deja", {"Zoë Déjà"}),               # part of an e-mail
    ("åsa", {"Åsa Öberg"}),                   # non-ASCII, other case
    ("De\u0301ja\u0300", {"Zoë Déjà"}),       # combining accents match the composed name
    ("fabrikam", {p[0] for p in PEOPLE}),
    ("a\x00de", {"Adele Vance"}),             # a NUL byte is dropped, not a 500
    ("x" * 10_000, set()),
    ("\u202eecnaV", set()),                   # right-to-left override: no match, no error
])
def test_search_by_part_of_a_name_upn_or_email(org, query, expected):
    assert set(names(org, q=query)) == expected


def test_filters(org):
    assert set(names(org, department="retail")) == {"Adele Vance", "Åsa Öberg"}
    assert set(names(org, location="GB")) == {"Alex Wilber"}
    assert set(names(org, location="-")) == {"Zoë Déjà"}
    assert set(names(org, inactive_days=30)) == {"Alex Wilber", "Åsa Öberg", "Zoë Déjà"}
    assert set(names(org, inactive_days=90)) == {"Åsa Öberg", "Zoë Déjà"}
    assert set(names(org, sku=org.pool)) == {"Adele Vance", "Åsa Öberg", "Zoë Déjà"}
    assert set(names(org, status="unlicensed")) == {"Alex Wilber"}
    assert set(names(org, q="a", sku=org.pool, department="Retail", inactive_days=30)) == {"Åsa Öberg"}


def test_licensed_and_unlicensed_split_the_current_users_by_seats_held(org):
    with tenant_context(org):
        alex = DirectoryUser.objects.for_org(org).get(upn_index=blind_index(UPN_INDEX, "alexw@fabrikam.example"))
        zoe = DirectoryUser.objects.for_org(org).get(upn_index=blind_index(UPN_INDEX, "zoe@fabrikam.example"))
        # A license Microsoft refused holds no seat; neither does a released one.
        LicenseAssignment.objects.create(organization=org, user=alex, sku=org.pool, state="failed")
        LicenseAssignment.objects.for_org(org).filter(user=zoe).update(state="removed")
        # A user removed from the directory, holding a seat, is in neither list.
        gone = DirectoryUser.objects.create(organization=org, graph_id=uuid.uuid4(), display_name="Gone",
                                            user_principal_name="gone@fabrikam.example", removed_at=timezone.now())
        LicenseAssignment.objects.create(organization=org, user=gone, sku=org.pool, state="assigned")
    directory_search.forget()
    assert set(names(org, status="licensed")) == {"Adele Vance", "Åsa Öberg"}
    assert set(names(org, status="unlicensed")) == {"Alex Wilber", "Zoë Déjà"}
    assert set(names(org, status="unlicensed", department="retail")) == set()


def test_sort_by_any_column(org):
    assert names(org, sort="name") == ["Adele Vance", "Alex Wilber", "Åsa Öberg", "Zoë Déjà"]
    assert names(org, sort="-name")[0] == "Zoë Déjà"
    assert names(org, sort="department")[:3] == ["Alex Wilber", "Adele Vance", "Åsa Öberg"]
    assert names(org, sort="-last_sign_in")[0] == "Adele Vance"
    assert names(org, sort="licenses")[0] == "Alex Wilber"
    assert names(org, sort="location") == ["Alex Wilber", "Åsa Öberg", "Adele Vance", "Zoë Déjà"]


def test_the_index_follows_changes_and_stays_in_its_organisation(org):
    assert names(org, q="ade") == ["Adele Vance"]
    with tenant_context(org):
        adele = DirectoryUser.objects.for_org(org).get(upn_index__isnull=False, display_name__isnull=False,
                                                       pk__in=directory_search.search_directory(org, q="ade"))
        adele.display_name = "Adele Morgan"
        adele.save()
    assert names(org, q="morgan") == ["Adele Morgan"]
    assert names(org, q="adele vance") == []  # the old name (the e-mail still says adele.vance)
    other = OrganizationFactory()
    with tenant_context(other):
        DirectoryUser.objects.create(organization=other, graph_id=uuid.uuid4(), display_name="Adele Elsewhere",
                                     user_principal_name="adele@other.example")
    assert names(org, q="elsewhere") == []
    assert names(other, q="ade") == ["Adele Elsewhere"]
    with tenant_context(org):
        DirectoryUser.objects.for_org(org).filter(pk=adele.pk).update(removed_at=timezone.now())
    assert names(org, q="morgan") == []


def test_users_page_searches_sorts_and_bulk_changes_only_the_selected_rows(org, client):
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    browser = verified_client(client, owner)
    url = reverse("licensing:directory_users", kwargs={"org_slug": org.slug})
    page = browser.get(url, {"q": "ade"}).content.decode()
    assert "Adele Vance" in page and "Alex Wilber" not in page
    fragment = browser.get(url, {"q": "a", "sort": "-name"}, HTTP_HX_REQUEST="true",
                           HTTP_HX_TARGET="users-results").content.decode()
    assert fragment.startswith('<div id="users-results"')
    order = re.findall(r'<th scope="row"><a [^>]+>([^<]+)</a>', fragment)
    assert order == ["Zoë Déjà", "Åsa Öberg", "Alex Wilber", "Adele Vance"]
    assert 'aria-sort="descending"' in fragment
    with tenant_context(org):
        picked = [str(pk) for pk in directory_search.search_directory(org, q="alex")]
    response = browser.post(reverse("licensing:bulk_from_selection", kwargs={"org_slug": org.slug}), {
        "scope": "selected", "user": picked, "target_sku": str(org.pool.pk), "action": "assign", "q": "a"})
    assert response.status_code == 302
    with tenant_context(org):
        job = BulkJob.objects.for_org(org).get()
        assert job.rows.count() == 1
    suggest = browser.get(reverse("licensing:directory_user_suggest", kwargs={"org_slug": org.slug}),
                          {"to_user": "wil"}).content.decode()
    assert suggest == '<option value="alexw@fabrikam.example">Alex Wilber · Marketing</option>\n'


def test_the_api_searches_by_part_of_a_name(org):
    api = api_client_for(org, Role.VIEWER)
    body = api.get("/api/v1/directory-users/", {"search": "WIL"}).json()
    results = body["results"] if isinstance(body, dict) else body
    assert [u["user_principal_name"] for u in results] == ["alexw@fabrikam.example"]
    # The API refuses a NUL in any query parameter with a clear 400 (the pages drop it instead).
    refused = api.get("/api/v1/directory-users/", {"search": "a\x00"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_parameter"


def test_destroying_the_organisations_key_stales_every_workers_index(org):
    """Crypto-shredding must reach indexes held by other worker processes, not only this one's."""
    from core.audit import Actor
    from core.crypto import KeyScope
    from core.keys import data_key_destroy

    assert names(org, q="adele") == ["Adele Vance"]
    held_elsewhere = directory_search._indexes[str(org.pk)]

    data_key_destroy(scope=KeyScope("org", str(org.pk)), actor=Actor.system("test"))
    assert str(org.pk) not in directory_search._indexes  # this process heard of it

    # Another worker still holds the index built before the key died: its version check must fail.
    directory_search._indexes[str(org.pk)] = held_elsewhere
    assert names(org, q="adele") == []
    assert names(org) == []
