"""Directory search over encrypted fields: an in-memory index of each organisation's decrypted directory.

Names, UPNs, e-mail addresses and departments are AES-GCM ciphertext in the database, so the database
cannot match "part of a name". Each worker process therefore keeps, per organisation, a compact index
of the decrypted searchable fields (docs/decisions/013-directory-search.md):

- built on first use by decrypting the organisation's users once (one query);
- checked on every search with one aggregate (row count and newest ``updated_at``): any sync, correction
  or erasure that writes a user changes it, and the index is rebuilt before it is used;
- bounded: at most ``MAX_ORGANIZATIONS`` organisations, least recently used first out, and never older
  than ``MAX_AGE`` seconds;
- kept in the worker's memory only, never in Redis, a file or a log, where decrypted personal data
  would outlive the request that may read it.

Licenses held and sign-in times are plain columns and always come from the database, so those filters
are never stale. A search returns primary keys in order; the page loads its rows by key.
"""

from __future__ import annotations

import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from core.crypto import DecryptionError, blind_index
from licensing.models import DirectoryUser, LicenseAssignment
from licensing.models.directory import MAIL_INDEX, UPN_INDEX

MAX_ORGANIZATIONS = 32
MAX_AGE = 600.0
MAX_QUERY = 200
SEAT_HOLDING = LicenseAssignment.SEAT_HOLDING

# Sort keys the page and API accept: key -> (label, the Entry attribute or "licenses").
SORTS = {
    "name": "Name",
    "upn": "User principal name",
    "mail": "E-mail",
    "department": "Department",
    "location": "Location",
    "licenses": "Licenses",
    "last_sign_in": "Last sign-in",
}
INACTIVITY_DAYS = (30, 60, 90, 180)


def fold(value: str | None) -> str:
    """The form names are matched and sorted in: case, width and accents ignored, so "asa", "ÅSA" and "Åsa"
    are equal, and a decomposed "é" equals "é"."""
    value = value or ""
    if value.isascii():
        # Nothing to decompose, and ASCII's case fold is its lower case: most names, and every UPN, take this
        # path, which keeps building a 10,000-user index from walking every character.
        return value.lower()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True, slots=True)
class Entry:
    pk: object
    name: str
    upn: str
    mail: str
    department: str
    location: str
    haystack: str  # folded name, UPN and e-mail, separated so a match cannot span two fields
    created_at: datetime
    last_sign_in_at: datetime | None
    account_enabled: bool
    keys: dict  # folded values to sort by, computed once per build


@dataclass
class _Index:
    version: tuple
    built: float
    entries: list[Entry]
    facets: dict


_indexes: OrderedDict[str, _Index] = OrderedDict()
_lock = threading.Lock()


def _version(organization) -> tuple:
    # COUNT(*) and MAX(updated_at) are answered from directory_user_listing_idx alone (it includes updated_at).
    stats = DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True).aggregate(
        n=Count("*"), last=Max("updated_at"))
    return stats["n"], stats["last"]


def _build(organization) -> list[Entry]:
    rows = (DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)
            .only("pk", "display_name", "user_principal_name", "mail", "department", "usage_location",
                  "created_at", "last_sign_in_at", "account_enabled", "organization_id"))
    entries = []
    for row in rows.iterator(chunk_size=2000):
        try:
            name, upn, mail = row.display_name or "", row.user_principal_name or "", row.mail or ""
            department, location = row.department or "", (row.usage_location or "").upper()
        except DecryptionError:
            # Its key was destroyed (crypto-shredding): nothing of it can match or be shown.
            continue
        folded = {"name": fold(name or upn), "upn": fold(upn), "mail": fold(mail), "department": fold(department),
                  "location": location.casefold()}
        entries.append(Entry(
            pk=row.pk, name=name, upn=upn, mail=mail, department=department, location=location,
            haystack="\x00".join((folded["name"] if name else "", folded["upn"], folded["mail"])),
            created_at=row.created_at, last_sign_in_at=row.last_sign_in_at, account_enabled=row.account_enabled,
            keys=folded,
        ))
    return entries


def directory_index(organization) -> list[Entry]:
    """The organisation's current users, decrypted once per change (see the module docstring)."""
    return _current_index(organization).entries


def _current_index(organization) -> _Index:
    key = str(organization.pk)
    version = _version(organization)
    with _lock:
        index = _indexes.get(key)
        if index is not None and index.version == version and time.monotonic() - index.built < MAX_AGE:
            _indexes.move_to_end(key)
            return index
    entries = _build(organization)
    index = _Index(version, time.monotonic(), entries, _facets(entries))
    with _lock:
        _indexes[key] = index
        _indexes.move_to_end(key)
        while len(_indexes) > MAX_ORGANIZATIONS:
            _indexes.popitem(last=False)
    return index


@dataclass(frozen=True)
class Snapshot:
    """The index and its filter menus from one change check, for a page that needs both."""

    entries: list[Entry]
    facets: dict[str, list[str]]


def directory_snapshot(organization) -> Snapshot:
    """The current users and the departments and locations present: one change check, where calling
    :func:`facets` and :func:`search_entries` separately makes two (each an aggregate over the directory)."""
    index = _current_index(organization)
    return Snapshot(index.entries, index.facets)


def forget(organization=None) -> None:
    """Drop one organisation's index (an organisation or its id; all without one): for tests and after
    crypto-shredding."""
    with _lock:
        if organization is None:
            _indexes.clear()
        else:
            _indexes.pop(str(getattr(organization, "pk", organization)), None)


def clean_query(value: str | None) -> str:
    return fold((value or "").replace("\x00", "").strip()[:MAX_QUERY])


def facets(organization) -> dict[str, list[str]]:
    """The departments and usage locations present, for the filter menus (computed with the index)."""
    return _current_index(organization).facets


def _facets(entries: list[Entry]) -> dict[str, list[str]]:
    return {
        "departments": sorted({e.department for e in entries if e.department}, key=str.casefold),
        "locations": sorted({e.location for e in entries if e.location}),
    }


def search_directory(organization, **filters) -> list:
    """Primary keys of the matching current users, sorted (see :func:`search_entries`)."""
    return [e.pk for e in search_entries(organization, **filters)]


def search_entries(
    organization, *, q: str = "", sku=None, status: str = "", department: str = "", location: str = "",
    inactive_days: int | None = None, sort: str = "", now: datetime | None = None, snapshot: Snapshot | None = None,
) -> list[Entry]:
    """The matching current users, sorted. ``q`` matches part of the name, UPN or e-mail (ignoring case and
    accents); ``sort`` is a key of SORTS, "-" first for descending; ``snapshot`` is the page's
    :func:`directory_snapshot`, else the index is checked here. Constant queries."""
    entries = snapshot.entries if snapshot is not None else directory_index(organization)
    needle = clean_query(q)
    if needle:
        entries = [e for e in entries if needle in e.haystack]
    if department:
        wanted = fold(department)
        entries = [e for e in entries if e.keys["department"] == wanted]
    if location:
        entries = [e for e in entries if e.location == location.upper()] if location != "-" else [
            e for e in entries if not e.location]
    if inactive_days:
        cutoff = (now or timezone.now()) - timedelta(days=inactive_days)
        entries = [e for e in entries if (e.last_sign_in_at or e.created_at) < cutoff]
    assignments = LicenseAssignment.objects.for_org(organization)
    held = assignments.filter(state__in=SEAT_HOLDING)
    if sku is not None:
        holders = set(held.filter(sku=sku).values_list("user_id", flat=True))
        entries = [e for e in entries if e.pk in holders]
    if status:
        entries = _by_status(organization, entries, status, held, assignments, sku)
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    if key == "licenses":
        counts = dict(held.values("user_id").annotate(n=Count("pk")).values_list("user_id", "n"))
        entries = sorted(entries, key=lambda e: (counts.get(e.pk, 0), e.keys["name"]), reverse=descending)
    elif key == "last_sign_in":
        never = datetime.min.replace(tzinfo=timezone.get_current_timezone())
        entries = sorted(entries, key=lambda e: e.last_sign_in_at or never, reverse=descending)
    elif key in ("upn", "mail", "department", "location"):
        entries = sorted(entries, key=lambda e: (e.keys[key] or "\uffff", e.keys["name"]), reverse=descending)
    elif key == "name":
        entries = sorted(entries, key=lambda e: (e.keys["name"], e.keys["upn"]), reverse=descending)
    return entries


def _by_status(organization, entries, status, held, assignments, sku):
    if status in ("licensed", "unlicensed"):
        # Read the current users who hold no seat, not the holders: in a directory most users are licensed, so
        # this is the short list (10,000 holders' ids took most of the page's time), and either answer is the
        # entries in or out of it.
        unseated = set(DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)
                       .exclude(pk__in=held.values("user_id")).values_list("pk", flat=True))
        wanted = status == "unlicensed"
        return [e for e in entries if (e.pk in unseated) is wanted]
    if status == "no_location":
        return [e for e in entries if not e.location]
    if status == "failed":
        failed = assignments.filter(state=LicenseAssignment.State.FAILED)
        failed = failed.filter(sku=sku) if sku is not None else failed
        ids = set(failed.values_list("user_id", flat=True))
        return [e for e in entries if e.pk in ids]
    return entries


@dataclass
class Row:
    """One line of the users page, drawn from the index (no decryption per page) and the page's licenses."""

    pk: object
    display_name: str
    user_principal_name: str
    mail: str
    department: str
    usage_location: str
    account_enabled: bool
    last_sign_in_at: datetime | None
    current_assignments: list
    url: str = ""  # the user's page; built here once per page rather than reversed per row in the template


def page_rows(organization, wanted: list[Entry]) -> list[Row]:
    """The page's users from the index, each with the licenses it holds (or failed to get) and the link to
    the user's page. One query."""
    held: dict = {e.pk: [] for e in wanted}
    shown = [*SEAT_HOLDING, LicenseAssignment.State.FAILED, LicenseAssignment.State.HANDING_OVER]
    assignments = (LicenseAssignment.objects.for_org(organization)
                   .filter(user_id__in=list(held), state__in=shown).select_related("sku")
                   .only("pk", "user_id", "state", "sku__display_name", "sku__sku_part_number", "sku__sku_id")
                   .order_by("sku__display_name"))
    for assignment in assignments:
        held[assignment.user_id].append(assignment)
    marker = uuid.UUID(int=0)
    url = reverse("licensing:directory_user", kwargs={"org_slug": organization.slug, "pk": marker})
    before, after = url.split(str(marker))
    return [Row(e.pk, e.name, e.upn, e.mail, e.department, e.location, e.account_enabled, e.last_sign_in_at,
                held[e.pk], f"{before}{e.pk}{after}") for e in wanted]


def directory_rows(organization, pks: list) -> list[DirectoryUser]:
    """The users of one page, in the order given. One query."""
    rows = {u.pk: u for u in DirectoryUser.objects.for_org(organization).filter(pk__in=pks)}
    return [rows[pk] for pk in pks if pk in rows]


def iter_directory_rows(organization, pks: list, *, chunk: int = 500):
    """All of ``pks``' users, in order, one query per ``chunk`` (bulk changes of a whole search result)."""
    for start in range(0, len(pks), chunk):
        yield from directory_rows(organization, pks[start:start + chunk])


def find_user(organization, handle: str) -> DirectoryUser | None:
    """The user a reassign form names: an id from the picker, else an exact UPN or e-mail (blind index)."""
    handle = (handle or "").replace("\x00", "").strip()[:320]
    if not handle:
        return None
    users = DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)
    try:
        return users.filter(pk=uuid.UUID(handle)).first()
    except ValueError:
        pass
    return users.filter(Q(upn_index=blind_index(UPN_INDEX, handle)) | Q(mail_index=blind_index(MAIL_INDEX, handle))
                        ).first()
