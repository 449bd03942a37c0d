"""A destructive staff admin action (delete) needs a recent second factor, on top of a grant that may change
the area: through an admin that allows delete (tests/reverify_admin_urls.py), the delete page and the
"delete selected" action send a staff member without one to re-verify, and delete nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import StaffRole
from accounts.tests.factories import OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing.models import ProvisioningOperation
from tests import reverify_admin_urls

pytestmark = pytest.mark.django_db


@pytest.fixture
def operation(settings):
    settings.ROOT_URLCONF = reverify_admin_urls.__name__
    org = OrganizationFactory()
    with tenant_context(org):
        return ProvisioningOperation.objects.create(organization=org, kind="order.checkout")


def _operator(client, operation, *, recent_mfa: bool):
    staff = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(staff=staff, organization=operation.organization, roles=[StaffRole.LICENSE_OPERATOR])
    return verified_client(client, staff, recent_mfa=recent_mfa)


def _exists(operation) -> bool:
    with tenant_context(operation.organization):
        return ProvisioningOperation.objects.filter(pk=operation.pk).exists()


def _reverify_url(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("accounts:mfa_verify")) \
        and "reason=sensitive" in response["Location"]


def test_the_delete_page_asks_for_a_fresh_second_factor_first(client, operation):
    url = reverse("reverify_admin:licensing_provisioningoperation_delete", args=[operation.pk])
    stale = _operator(client, operation, recent_mfa=False)
    assert _reverify_url(stale.get(url))
    assert _reverify_url(stale.post(url, {"post": "yes"}))
    assert _exists(operation)


def test_with_a_fresh_second_factor_the_grant_lets_the_operator_delete(client, operation):
    url = reverse("reverify_admin:licensing_provisioningoperation_delete", args=[operation.pk])
    fresh = _operator(client, operation, recent_mfa=True)
    assert fresh.get(url).status_code == 200
    assert fresh.post(url, {"post": "yes"}).status_code == 302
    assert not _exists(operation)


def test_delete_selected_asks_too(client, operation):
    url = reverse("reverify_admin:licensing_provisioningoperation_changelist")
    form = {"action": "delete_selected", "_selected_action": [str(operation.pk)], "post": "yes"}
    stale = _operator(client, operation, recent_mfa=False)
    assert _reverify_url(stale.post(url, form))
    assert _exists(operation)


def test_a_reader_cannot_delete_even_with_a_fresh_second_factor(client, operation):
    staff = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(staff=staff, organization=operation.organization, roles=[StaffRole.SUPPORT_READER])
    reader = verified_client(client, staff, recent_mfa=True)
    url = reverse("reverify_admin:licensing_provisioningoperation_delete", args=[operation.pk])
    assert reader.post(url, {"post": "yes"}).status_code == 403
    assert _exists(operation)
