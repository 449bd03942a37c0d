"""THE write path from Graph into the portal: seat pools (TenantSku) and directory users with their
tenant-side license assignments. Fields locked by a privacy correction are never overwritten;
unchanged users cost one keyed hash comparison and no write."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.crypto import blind_indexer, random_uuids
from core.field_locks import conflict_record, locked_fields, restricted_object_ids, suppressed_object_ids
from core.fields import encrypted_bulk_insert, encrypted_bulk_update
from core.tenancy import tenant_context
from licensing.models import DirectorySync, DirectoryUser, LicenseAssignment, Sku, TenantSku
from licensing.models.directory import GRAPH_ID_INDEX
from licensing.selectors import directory_search

USER_SELECT = (
    "id", "displayName", "userPrincipalName", "mail", "jobTitle", "department", "usageLocation", "accountEnabled",
    "assignedLicenses",
)
SOURCE_HASH_PURPOSE = "directory-user-source"

# Graph property -> DirectoryUser field; these are the fields a privacy correction can lock.
GRAPH_FIELDS = {
    "displayName": "display_name",
    "userPrincipalName": "user_principal_name",
    "mail": "mail",
    "jobTitle": "job_title",
    "department": "department",
    "usageLocation": "usage_location",
    "accountEnabled": "account_enabled",
}
# What a changed user's update writes: the Graph fields (a locked one rewrites the ciphertext it was loaded
# with), their blind indexes and what the sync derives or stamps.
_WRITTEN_ON_UPDATE = [
    *GRAPH_FIELDS.values(), "upn_index", "mail_index", "has_usage_location", "last_sign_in_at", "source_hash",
    "last_seen_sync", "removed_at", "updated_at",
]
_NOT_FROM_GRAPH = [
    f.name for f in DirectoryUser._meta.fields if f.name not in {*GRAPH_FIELDS.values(), "graph_id", "last_sign_in_at"}
]
# Rows per UPDATE: Django's bulk_update writes a CASE per field with a branch per row, which grows
# quadratically for the database; a hundred rows keeps it a few milliseconds.
UPDATE_BATCH = 100


@transaction.atomic
def tenant_skus_upsert_from_graph(*, organization, skus: list[dict]) -> int:
    """Seat pools from Graph subscribedSkus. Purchased = enabled + warning (still usable in grace)."""
    existing = {s.sku_id: s for s in TenantSku.objects.for_org(organization)}
    now = timezone.now()
    for item in skus:
        sku_id = uuid.UUID(item["skuId"])
        prepaid = item.get("prepaidUnits") or {}
        sku = existing.get(sku_id) or TenantSku(organization=organization, sku_id=sku_id)
        sku.sku_part_number = item.get("skuPartNumber", "")[:120]
        sku.display_name = _display_name(sku_id, sku.sku_part_number, current=sku.display_name)
        sku.capability_status = item.get("capabilityStatus", "Enabled")[:20]
        sku.purchased = int(prepaid.get("enabled", 0)) + int(prepaid.get("warning", 0))
        sku.suspended = int(prepaid.get("suspended", 0))
        sku.consumed_in_tenant = int(item.get("consumedUnits", 0))
        sku.service_plans = [
            {"id": p.get("servicePlanId"), "name": p.get("servicePlanName")} for p in item.get("servicePlans", [])
        ]
        sku.subscription_ids = list(item.get("subscriptionIds", []))
        sku.applies_to_users = item.get("appliesTo", "User") == "User"
        sku.last_synced_at = now
        sku.full_clean()
        sku.save()
    return len(skus)


def _display_name(sku_id: uuid.UUID, part_number: str, *, current: str = "") -> str:
    """The catalog title when the catalog knows the SKU. Graph's skuId is the catalog's provisioning id;
    Partner Center's catalog carries no part number to match on."""
    title = Sku.objects.filter(provisioning_id__iexact=str(sku_id)).values_list("title", flat=True).first()
    return (title or current or part_number)[:200]


_FINGERPRINTED = (*USER_SELECT, "signInActivity")
# What json.dumps(sort_keys=True, default=str) builds on every call with those arguments, built once.
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _one_shot_json(encoder: json.JSONEncoder):
    """``encoder.encode`` for dicts, with the C encoder it builds on every call built once: the same text
    (``JSONEncoder.iterencode`` passes the C encoder these very settings), without the two Python-level calls
    and the encoder's construction per user. No circular-reference check: a Graph payload is parsed JSON."""
    make_encoder = json.encoder.c_make_encoder
    if make_encoder is None or encoder.indent is not None or not encoder.ensure_ascii:
        return encoder.encode
    encode = make_encoder(None, encoder.default, json.encoder.encode_basestring_ascii, None, encoder.key_separator,
                          encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)
    return lambda document: "".join(encode(document, 0))


_fingerprint_json = _one_shot_json(_FINGERPRINT_JSON)


def _fingerprinter(organization):
    """The source fingerprint of a page's Graph users: a keyed hash of what the sync stores of each (and the
    organisation), compared before anything is decrypted. The organisation's id text and the HMAC key are
    worked out once per page; the digest is the one ``blind_index`` gives the same JSON."""
    org = str(organization.pk)
    digest = blind_indexer(SOURCE_HASH_PURPOSE)

    def fingerprint(user: dict) -> str:
        relevant = {key: user.get(key) for key in _FINGERPRINTED}
        relevant["org"] = org
        return digest(_fingerprint_json(relevant))

    return fingerprint


def _stored_fingerprints(organization, indexes: list[str]) -> dict[str, tuple]:
    """``graph_id_index`` -> (pk, source_hash, removed_at) of the stored users among a page's keys.

    On PostgreSQL one probe of the unique (organisation, index) constraint's index per listed key: a
    ``LATERAL`` join with an ``OFFSET 0`` fence, so the planner cannot turn it back into a join over the
    organisation's rows. As ``graph_id_index IN (...)`` it did: each page read and hashed every stored user of
    the organisation (the statistics of a directory that is being filled say it is small), 9 to 17 ms a page
    at 10,000 users, growing with the directory. The probe's own query is the scoped queryset's.
    """
    scoped = (DirectoryUser.objects.for_org(organization).order_by()
              .values_list("pk", "graph_id_index", "source_hash", "removed_at"))
    if connection.vendor != "postgresql":
        scoped = scoped.filter(graph_id_index__in=indexes)
        return {index: (pk, digest, removed) for pk, index, digest, removed in scoped}
    probe, params = scoped.filter(graph_id_index=RawSQL("listed.graph_id_index", ())).query.sql_with_params()
    with connection.cursor() as cursor:
        # One array parameter: psycopg's client-side binding parsed a statement of 500 placeholders per page.
        cursor.execute(
            f"SELECT stored.* FROM UNNEST(%s::varchar[]) AS listed(graph_id_index)"  # noqa: S608 - Django's SQL
            f" CROSS JOIN LATERAL ({probe} OFFSET 0) AS stored",
            [indexes, *params],
        )
        return {index: (pk, digest, removed) for pk, index, digest, removed in cursor.fetchall()}


def _last_sign_in(user: dict) -> datetime | None:
    activity = user.get("signInActivity") or {}
    moments = [
        parse_datetime(v)
        for v in (activity.get("lastSignInDateTime"), activity.get("lastNonInteractiveSignInDateTime"))
        if v
    ]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


def directory_user_upsert_from_graph(
    *, organization, users: Sequence[dict], sync: DirectorySync | None = None, skus: dict | None = None,
    seen: set | None = None,
) -> dict[str, int]:
    """THE write path from Graph into DirectoryUser (and its tenant-side license assignments).

    Takes a page of Graph user objects. Fields locked by a privacy correction are never
    overwritten. Queries per page are constant, and an unchanged user costs neither decryption
    nor a write: one read of the page's stored fingerprints; only for changed users one read of
    their rows, of the locks and of the assignments, then one insert and batched updates.
    ``seen`` collects the stored users the page listed (``pk.int``), for the run to find who is gone.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    if not users:
        return counts
    skus = skus if skus is not None else {s.sku_id: s for s in TenantSku.objects.for_org(organization)}
    # Rows are matched by the keyed index of the Entra object id (the id itself is encrypted): one HMAC
    # per listed user, over the canonical text, the way UUIDIndexField indexes it on save.
    incoming = []
    id_index = blind_indexer(GRAPH_ID_INDEX)
    for payload in users:
        graph_id = uuid.UUID(payload["id"])
        incoming.append((id_index(str(graph_id)), graph_id, payload))
    stored = _stored_fingerprints(organization, [index for index, _, _ in incoming])
    to_write = []
    fingerprint = _fingerprinter(organization)
    for index, graph_id, payload in incoming:
        digest = fingerprint(payload)
        known = stored.get(index)
        if known is not None and known[1] == digest and known[2] is None:
            counts["unchanged"] += 1
        else:
            to_write.append((index, graph_id, payload, digest))
    if seen is not None:
        seen.update(pk.int for pk, _, _ in stored.values())
    if not to_write:
        return counts
    changed_ids = [stored[index][0] for index, _, _, _ in to_write if index in stored]
    existing = {u.graph_id_index: u for u in DirectoryUser.objects.for_org(organization).filter(pk__in=changed_ids)}
    locks = locked_fields(organization, DirectoryUser, changed_ids)
    # GDPR Art. 18: a restricted person's row is stored, not updated; differing values become conflicts.
    restricted = restricted_object_ids(organization, DirectoryUser, changed_ids)
    # An erased person (privacy erasure) stays a tombstone: the sync neither refills nor reports it.
    suppressed = suppressed_object_ids(organization, DirectoryUser, restricted)
    created_rows, updated_rows, changed = [], [], []
    # One read of the random source per page, not one per new user.
    new_ids = iter(random_uuids(sum(index not in existing for index, *_ in to_write)))
    for index, graph_id, payload, digest in to_write:
        row = existing.get(index)
        if row is None:
            # A new user: no lock, restriction or tombstone can name a row that does not exist yet. Its
            # values go straight into the insert, without a model instance (most of a first sync).
            values = _graph_values(payload)
            _validate_new(values)
            values.update(
                id=next(new_ids), organization_id=organization.pk, graph_id=graph_id, graph_id_index=index,
                has_usage_location=bool(values["usage_location"]), source_hash=digest,
                last_seen_sync_id=sync.pk if sync is not None else None, removed_at=None,
                last_sign_in_at=_last_sign_in(payload) if "signInActivity" in payload else None,
            )
            created_rows.append(values)
            counts["created"] += 1
            changed.append((values["id"], payload, True))
            continue
        if str(row.pk) in suppressed:
            counts["unchanged"] += 1
            continue
        locked = locks.get(str(row.pk), set())
        if str(row.pk) in restricted:
            locked = {*GRAPH_FIELDS.values(), "last_sign_in_at"}
        refused = []
        for field_name, value in _graph_values(payload).items():
            if field_name in locked:
                if value != getattr(row, field_name):
                    refused.append(field_name)  # a privacy correction stands: staff see the conflict
                continue
            setattr(row, field_name, value)
        if refused:
            conflict_record(organization=organization, model=DirectoryUser, object_id=row.pk, field_names=refused,
                            source="graph directory sync")
        row.has_usage_location = bool(row.usage_location)
        if "last_sign_in_at" not in locked and "signInActivity" in payload:
            row.last_sign_in_at = _last_sign_in(payload)
        row.source_hash = digest
        row.last_seen_sync = sync
        row.removed_at = None
        # Field validation only, of what Graph wrote: the uniqueness, constraint and foreign-key checks
        # would cost three queries per user; the rows were just looked up by graph id and the database
        # enforces the same constraints on insert and update.
        row.clean_fields(exclude=_NOT_FROM_GRAPH)
        updated_rows.append(row)
        counts["updated"] += 1
        changed.append((row.pk, payload, False))
    # Encrypted and indexed as a save would (core.fields.encrypted_bulk_insert), in one INSERT per page.
    encrypted_bulk_insert(DirectoryUser, created_rows)
    # Encrypts only what changed: a locked field keeps the ciphertext it was loaded with.
    encrypted_bulk_update(DirectoryUser.objects.for_org(organization), updated_rows, _WRITTEN_ON_UPDATE,
                          batch_size=UPDATE_BATCH)
    _reconcile_tenant_assignments(organization, changed, skus, sync)
    return counts


def _graph_values(payload: dict) -> dict:
    """The Graph fields of a user as the model stores them (before locks are applied)."""
    values = {}
    for graph_name, field_name in GRAPH_FIELDS.items():
        value = payload.get(graph_name)
        if field_name == "account_enabled":
            value = bool(value) if value is not None else True
        elif field_name in ("display_name", "user_principal_name"):
            value = value or ""
        values[field_name] = value
    return values


# What clean_fields checks of a new user's Graph text fields: required or not, and the plaintext's length.
_TEXT_RULES = [
    (f.name, f.null, f.blank, f.plaintext_max_length)
    for f in (DirectoryUser._meta.get_field(name) for name in GRAPH_FIELDS.values())
    if hasattr(f, "plaintext_max_length")
]


def _validate_new(values: dict) -> None:
    """The field validation ``clean_fields`` gave a new user, at a fraction of its cost per user:
    text, within its length, and present where the model requires it."""
    errors = {}
    for name, null, blank, max_length in _TEXT_RULES:
        value = values[name]
        if value is None:
            if not null:
                errors[name] = ["This field cannot be null."]
        elif not isinstance(value, str):
            errors[name] = ["Enter text."]
        elif not value and not blank:
            errors[name] = ["This field cannot be blank."]
        elif len(value) > max_length:
            errors[name] = [f"Ensure this value has at most {max_length} characters (it has {len(value)})."]
    if errors:
        raise ValidationError(errors)


def _reconcile_tenant_assignments(organization, changed, skus: dict, sync: DirectorySync | None) -> None:
    """Make assignments match what Graph says each changed user holds.

    Rows in flight (PENDING/REMOVING) belong to the outbox and are left alone; an ASSIGNED row
    whose license vanished is only dropped if it was assigned before this sync started, so a
    page fetched just before our own assignment landed cannot undo it.
    """
    if not changed:
        return
    started = sync.started_at if sync is not None else timezone.now()
    known_users = [pk for pk, _, created in changed if not created]  # a new user holds nothing yet
    current: dict = {}  # user pk -> {seat pool pk -> assignment}
    if known_users:
        for a in LicenseAssignment.objects.for_org(organization).filter(user_id__in=known_users):
            current.setdefault(a.user_id, {})[a.sku_id] = a
    now = timezone.now()
    to_create, to_update = [], []
    for user_pk, payload, _ in changed:
        held = {}
        for lic in payload.get("assignedLicenses") or []:
            sku = skus.get(uuid.UUID(lic["skuId"]))
            if sku is not None:
                held[sku.pk] = sorted(lic.get("disabledPlans") or [])
        holding = current.get(user_pk, {})
        for sku_pk, plans in held.items():
            assignment = holding.get(sku_pk)
            if assignment is None:
                to_create.append(LicenseAssignment(
                    organization=organization, user_id=user_pk, sku_id=sku_pk, state=LicenseAssignment.State.ASSIGNED,
                    source=LicenseAssignment.Source.TENANT, disabled_plans=plans, assigned_at=now,
                ))
            elif assignment.state in (LicenseAssignment.State.FAILED, LicenseAssignment.State.REMOVED):
                assignment.state = LicenseAssignment.State.ASSIGNED
                assignment.disabled_plans = plans
                assignment.assigned_at = now
                assignment.removed_at = None
                to_update.append(assignment)
            elif assignment.state == LicenseAssignment.State.ASSIGNED and assignment.disabled_plans != plans:
                assignment.disabled_plans = plans
                to_update.append(assignment)
        for sku_pk, assignment in holding.items():
            if sku_pk in held:
                continue
            if assignment.state == LicenseAssignment.State.ASSIGNED and (
                assignment.assigned_at is None or assignment.assigned_at < started
            ):
                assignment.state = LicenseAssignment.State.REMOVED
                assignment.removed_at = now
                to_update.append(assignment)
    LicenseAssignment.objects.bulk_create(to_create, ignore_conflicts=True)
    for assignment in to_update:
        assignment.updated_at = now  # bulk_update does not stamp auto_now
    if to_update:
        LicenseAssignment.objects.bulk_update(
            to_update, ["state", "disabled_plans", "assigned_at", "removed_at", "updated_at"]
        )


def directory_users_key_destroyed(scope) -> None:
    """An organisation's data key was destroyed: no worker may keep serving its users from memory.

    Each worker's search index (licensing.selectors.directory_search) is rebuilt when the users' count or
    newest ``updated_at`` changes, so touching the rows reaches every process, not only this one.
    """
    if scope.kind != "org":
        return
    with tenant_context(scope.id):
        DirectoryUser.objects.update(updated_at=timezone.now())
    directory_search.forget(scope.id)
