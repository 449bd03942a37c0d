"""What an audit event touched, in words, with a link: "Business Premium for Adele Vance" instead of
"LicenseAssignment 3f2c7b1e".

Each known target type has a describer: how to load its rows for one organisation (one query per type
on a page, whatever the number of events), how to name a row, and where its page is. An operation is
named by what it did to its own target ("Assign license: Business Premium for Adele Vance"), which
costs one more query per type of those targets. A row that no longer exists is named by its type with
"(deleted)" and has no link; an unknown type keeps the old "Type 1234abcd" text.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse

from accounts.models import ApiKey, Invitation, Membership, MicrosoftTenant, Organization, User
from licensing.models import (
    BulkJob,
    CustomerAgreement,
    DirectorySync,
    DirectoryUser,
    GdapRelationship,
    LicenseAssignment,
    Order,
    ProvisioningOperation,
    ReductionProposal,
    Subscription,
    TenantOnboarding,
    TenantSku,
)


@dataclass(frozen=True)
class TargetLabel:
    text: str
    url: str = ""


@dataclass(frozen=True)
class Describer:
    noun: str
    rows: Callable[[object, list[uuid.UUID]], QuerySet]
    label: Callable[[object], str]
    url_name: str = ""
    url_kwargs: Callable[[object], dict] = lambda obj: {"pk": obj.pk}


def _tenant_rows(model, *related):
    def rows(organization, ids):
        queryset = model.objects.for_org(organization).filter(pk__in=ids)
        return queryset.select_related(*related) if related else queryset
    return rows


def _words(kind: str) -> str:
    return kind.replace(".", " ").replace("_", " ").strip().capitalize()


def _assignment(assignment: LicenseAssignment) -> str:
    return f"{assignment.sku.label} for {assignment.user}"


DESCRIBERS: dict[str, Describer] = {
    "Subscription": Describer("Subscription", _tenant_rows(Subscription), str, "licensing:subscription"),
    "Order": Describer("Order", _tenant_rows(Order), lambda o: f"Order: {o}", "licensing:order"),
    "LicenseAssignment": Describer(
        "License assignment", _tenant_rows(LicenseAssignment, "sku", "user"), _assignment,
        "licensing:directory_user", lambda a: {"pk": a.user_id}),
    "DirectoryUser": Describer("Directory user", _tenant_rows(DirectoryUser), str, "licensing:directory_user"),
    "BulkJob": Describer("Bulk job", _tenant_rows(BulkJob, "sku"), lambda j: f"Bulk job: {j}", "licensing:bulk_job"),
    "DirectorySync": Describer("Directory sync", _tenant_rows(DirectorySync), str, "licensing:licenses",
                               lambda _: {}),
    "TenantSku": Describer("License", _tenant_rows(TenantSku), str, "licensing:licenses", lambda _: {}),
    "ReductionProposal": Describer(
        "Reduction at renewal", _tenant_rows(ReductionProposal, "sku"),
        lambda p: f"Reduce {p.sku.label} by {p.reduce_by} at renewal", "licensing:usage", lambda _: {}),
    "TenantOnboarding": Describer("Microsoft tenant set-up", _tenant_rows(TenantOnboarding), str, "licensing:tenant",
                                  lambda _: {}),
    "GdapRelationship": Describer("Admin relationship", _tenant_rows(GdapRelationship),
                                  lambda r: f"Admin relationship: {r}", "licensing:tenant", lambda _: {}),
    "CustomerAgreement": Describer("Customer agreement", _tenant_rows(CustomerAgreement),
                                   lambda a: f"Microsoft Customer Agreement {a.version}", "licensing:tenant",
                                   lambda _: {}),
    "MicrosoftTenant": Describer("Microsoft tenant", _tenant_rows(MicrosoftTenant),
                                 lambda t: f"Microsoft tenant {t}", "licensing:tenant", lambda _: {}),
    "ApiKey": Describer("API key", _tenant_rows(ApiKey), lambda k: f"API key {k.name}", "team:api_keys",
                        lambda _: {}),
    "Invitation": Describer("Invitation", _tenant_rows(Invitation), lambda i: f"Invitation as {i.get_role_display()}",
                            "team:members", lambda _: {}),
    "Membership": Describer(
        "Membership", lambda org, ids: Membership.objects.filter(organization=org, pk__in=ids).select_related("user"),
        lambda m: f"{m.user} ({m.get_role_display()})", "team:members", lambda _: {}),
    # Only members of this organisation are named; anyone else stays an id.
    "User": Describer(
        "Member", lambda org, ids: User.objects.filter(pk__in=ids, memberships__organization=org).distinct(), str,
        "team:members", lambda _: {}),
    "Organization": Describer("Organisation", lambda org, ids: Organization.objects.filter(pk=org.pk, pk__in=ids),
                              lambda o: f"Organisation {o}", "team:settings", lambda _: {}),
}

OPERATION = "ProvisioningOperation"


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _load(organization, wanted: dict[str, set[str]]) -> dict[tuple[str, str], object]:
    found: dict[tuple[str, str], object] = {}
    for target_type, ids in wanted.items():
        describer = DESCRIBERS.get(target_type)
        valid = [u for u in map(_as_uuid, ids) if u is not None]
        if describer is None or not valid:
            continue
        for obj in describer.rows(organization, valid):
            found[(target_type, str(obj.pk))] = obj
    return found


def _url(describer: Describer, obj, slug: str) -> str:
    if not describer.url_name:
        return ""
    try:
        return reverse(describer.url_name, kwargs={"org_slug": slug, **describer.url_kwargs(obj)})
    except NoReverseMatch:
        return ""


def describe_targets(pairs: Iterable[tuple[str, str]], *, organization) -> dict[tuple[str, str], TargetLabel]:
    """Labels for (target_type, target_id) pairs, keyed the same way. One query per target type present,
    plus one per type of the operations' own targets."""
    pairs = {(t, i) for t, i in pairs if t}
    wanted: dict[str, set[str]] = defaultdict(set)
    for target_type, target_id in pairs:
        wanted[target_type].add(target_id)
    operations = {}
    if wanted.get(OPERATION):
        valid = [u for u in map(_as_uuid, wanted[OPERATION]) if u is not None]
        operations = {str(op.pk): op for op in ProvisioningOperation.objects.for_org(organization).filter(pk__in=valid)}
        for op in operations.values():
            if op.target_type:
                wanted[op.target_type].add(op.target_id)
    objects = _load(organization, wanted)
    slug = organization.slug

    def plain(target_type: str, target_id: str) -> TargetLabel:
        describer = DESCRIBERS.get(target_type)
        obj = objects.get((target_type, target_id))
        if describer is None:
            return TargetLabel(f"{target_type} {target_id[:8]}".strip())
        if obj is None:
            return TargetLabel(f"{describer.noun} (deleted)")
        return TargetLabel(describer.label(obj), _url(describer, obj, slug))

    labels: dict[tuple[str, str], TargetLabel] = {}
    for target_type, target_id in pairs:
        if target_type != OPERATION:
            labels[(target_type, target_id)] = plain(target_type, target_id)
            continue
        op = operations.get(target_id)
        if op is None:
            labels[(target_type, target_id)] = TargetLabel("Microsoft operation (deleted)")
            continue
        what = plain(op.target_type, op.target_id).text if op.target_type else ""
        text = f"{_words(op.kind)}: {what}" if what else _words(op.kind)
        try:
            url = reverse("licensing:operation", kwargs={"org_slug": slug, "pk": op.pk})
        except NoReverseMatch:
            url = ""
        labels[(target_type, target_id)] = TargetLabel(text, url)
    return labels
