"""The directory users page lists the organisation's licenses twice (the License filter and the bulk bar) from
one read, with the chosen filter still selected."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from licensing.tests.core.factories import DirectoryUserFactory, TenantSkuFactory

pytestmark = pytest.mark.django_db


def test_both_lists_come_from_one_read_and_the_chosen_license_stays_selected(organization, member_client):
    pools = sorted((TenantSkuFactory(organization=organization, display_name=name)
                    for name in ("Visio Plan 2", "Microsoft 365 E3", "Project <Online>")),
                   key=lambda pool: pool.display_name)
    TenantSkuFactory(display_name="Someone else's")
    DirectoryUserFactory(organization=organization)  # a row, so the bulk bar is shown
    browser, _ = member_client(Role.LICENSE_ADMIN)
    url = reverse("licensing:directory_users", kwargs={"org_slug": organization.slug})
    browser.get(url)
    with CaptureQueriesContext(connection) as captured:
        page = browser.get(url).content.decode()
    assert sum('FROM "licensing_tenantsku"' in q["sql"] for q in captured.captured_queries) == 1
    filter_options = re.search(r'<select name="sku"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', filter_options) == ["", *(str(p.pk) for p in pools)]
    assert "Project &lt;Online&gt;" in filter_options and "Someone else" not in page
    bulk_options = re.search(r'<select id="target-sku"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', bulk_options) == [str(p.pk) for p in pools]

    chosen = pools[1]
    page = browser.get(url, {"sku": str(chosen.pk)}).content.decode()
    filter_options = re.search(r'<select name="sku"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)" selected>', filter_options) == [str(chosen.pk)]
