"""The disclosures of one call's $batch requests, logged together (core.disclosures.disclosure_record_many)."""

from __future__ import annotations

import pytest

from accounts.tests.api_support import api_client_for
from accounts.tests.factories import OrganizationFactory
from core.disclosures import DisclosureRefused, disclosure_record, disclosure_record_many
from core.models import Disclosure

pytestmark = pytest.mark.django_db

OPERATION = "graph.users.assign_license_batch"


def _log(organization, requests, purpose=Disclosure.Purpose.LICENSE_MANAGEMENT):
    return disclosure_record_many(recipient=Disclosure.Recipient.MICROSOFT, organization=organization,
                                  categories=["identity"], purpose=purpose, operation=OPERATION, requests=requests)


def test_one_row_per_request_and_a_retry_logs_nothing_twice():
    org = OrganizationFactory()
    # A request logged earlier on its own (an operation's first attempt) keeps its row.
    earlier = disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=org, categories=["identity"],
                                purpose=Disclosure.Purpose.LICENSE_MANAGEMENT, operation=OPERATION,
                                ms_request_id="chunk-0", subject_count=20)
    logged = _log(org, [("chunk-0", 20), ("chunk-1", 20), ("chunk-2", 7)])
    assert [d.request_id for d in logged] == ["chunk-0", "chunk-1", "chunk-2"] and logged[0].pk == earlier.pk
    assert [d.subject_count for d in logged] == [20, 20, 7]
    again = _log(org, [("chunk-0", 20), ("chunk-1", 20), ("chunk-2", 7)])
    assert [d.pk for d in again] == [d.pk for d in logged]
    rows = Disclosure.objects.filter(operation=OPERATION).order_by("request_id")
    assert [(d.request_id, d.organization_id, d.categories) for d in rows] == [
        (f"chunk-{n}", org.pk, ["identity"]) for n in range(3)]


def test_the_same_refusal_as_one_at_a_time():
    opted = OrganizationFactory()
    api_client_for(opted).post("/api/v1/privacy/opt-out/")
    with pytest.raises(DisclosureRefused):
        _log(opted, [("m-1", 3)], purpose=Disclosure.Purpose.MARKETING)
    assert not Disclosure.objects.filter(request_id="m-1").exists()
    assert len(_log(opted, [("p-1", 3)])) == 1  # necessary disclosures still happen
