"""The seam between the directory services and Graph: one organisation's tenant, as the sync and the
assignments need it. Tests and benchmarks replace it with their own ``DirectoryGraph``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from accounts.models import MicrosoftTenant
from core.registry import Category
from licensing.microsoft import errors as ms
from licensing.microsoft.client import default_client
from licensing.microsoft.disclosure import PersonalData, Purpose
from licensing.microsoft.resources import BatchItemResult


class DirectoryGraph(Protocol):
    """What the sync and the assignments need from Graph, bound to one customer tenant."""

    def user_pages(self, *, select: Sequence[str], page_size: int) -> Iterator[list[dict]]: ...

    def user_page_links(
        self, *, select: Sequence[str], page_size: int, start_link: str | None = None
    ) -> Iterator[tuple[list[dict], str | None]]:
        """Pages with the link to the next one (None after the last), starting at ``start_link`` if given."""

    def subscribed_skus(self) -> list[dict]: ...

    def batch(self, requests: list[dict], *, request_id: str, subject_ids=()) -> list[BatchItemResult]:
        """At most 20 assignLicense requests -> one typed result per request, in input order. ``subject_ids``
        names the directory users the call discloses, so a restricted one (GDPR Art. 18) stops it."""


# $batch calls of one outbox operation sent at once (an operation of 100 assignments is five calls of 20):
# the round trips overlap, and each call still waits out its own Retry-After, so Graph's throttle paces them.
BATCH_IN_FLIGHT = 4

# Graph serves at most 500 users a page when signInActivity is selected, whatever $top says
# (learn.microsoft.com/graph/api/user-list); asking for that page size keeps pages predictable.
SIGN_IN_ACTIVITY_PAGE_SIZE = 500


def _with_activity(page_size: int) -> int:
    return min(page_size, SIGN_IN_ACTIVITY_PAGE_SIZE)


class DirectoryNotLinked(Exception):
    """The organisation has no linked Microsoft tenant to read a directory from."""


class TenantGraph:
    """The Microsoft client's Graph, bound to one organisation's tenant: the seam tests replace."""

    def __init__(self, *, graph, organization, tenant_id: str):
        self.graph = graph
        self.organization = organization
        self.tenant_id = tenant_id

    def user_pages(self, *, select: Sequence[str], page_size: int) -> Iterator[list[dict]]:
        pages = self.graph.iter_user_pages(tenant_id=self.tenant_id, select=[*select, "signInActivity"],
                                           top=_with_activity(page_size))
        try:
            first = next(pages, None)
        except ms.Forbidden:
            # Sign-in activity needs Entra ID P1 and AuditLog.Read.All; without them, sync the rest.
            pages = self.graph.iter_user_pages(tenant_id=self.tenant_id, select=list(select), top=page_size)
            first = next(pages, None)
        if first is None:
            return
        yield [u.raw for u in first]
        for page in pages:
            yield [u.raw for u in page]

    def user_page_links(
        self, *, select: Sequence[str], page_size: int, start_link: str | None = None
    ) -> Iterator[tuple[list[dict], str | None]]:
        def listing(fields, link=None):
            top = _with_activity(page_size) if "signInActivity" in fields else page_size
            # The next page is fetched while the caller writes this one (the paging is a fifth of a first sync).
            return self.graph.iter_user_page_links(tenant_id=self.tenant_id, select=fields, top=top,
                                                   start_link=link, read_ahead=True)

        pages = listing([*select, "signInActivity"], start_link)
        try:
            first = next(pages, None)
        except ms.Forbidden:
            if start_link:
                raise
            # Sign-in activity needs Entra ID P1 and AuditLog.Read.All; without them, sync the rest.
            pages = listing(list(select))
            first = next(pages, None)
        except ms.InvalidRequest:
            if not start_link:
                raise
            # The saved link expired (skip tokens do not last for ever): list from the start instead.
            pages = listing([*select, "signInActivity"])
            first = next(pages, None)
        if first is None:
            return
        try:
            yield [u.raw for u in first[0]], first[1]
            for users, following in pages:
                yield [u.raw for u in users], following
        finally:
            pages.close()  # the page fetched ahead is waited for, not left to a thread

    def subscribed_skus(self) -> list[dict]:
        return [s.raw for s in self.graph.subscribed_skus(tenant_id=self.tenant_id)]

    def batch(self, requests: list[dict], *, request_id: str, subject_ids=()) -> list[BatchItemResult]:
        personal = PersonalData.of(
            [Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=self.organization,
            subject_count=len(requests), subject_model="licensing.directoryuser", subject_ids=subject_ids,
        )
        return self.graph.batch(
            tenant_id=self.tenant_id, requests=requests, request_id=request_id, personal=personal,
            operation="users.assign_license_batch", in_flight=BATCH_IN_FLIGHT,
        )


    # -- user actions (create, password reset, sign-in block, session revocation) ------------------------
    # Not in the DirectoryGraph protocol: only the user-action handlers (users.py, offboard.py) call them.

    def create_user(self, **fields) -> dict:
        return self.graph.create_user(organization=self.organization, tenant_id=self.tenant_id, **fields).raw

    def get_user(self, *, user_key: str, select: Sequence[str]) -> dict:
        return self.graph.get_user(tenant_id=self.tenant_id, user_key=user_key, select=select,
                                   organization=self.organization).raw

    def set_account_enabled(self, *, user_id: str, enabled: bool, request_id: str) -> None:
        self.graph.set_account_enabled(organization=self.organization, tenant_id=self.tenant_id, user_id=user_id,
                                       enabled=enabled, request_id=request_id)

    def reset_password(self, *, user_id: str, password: str, force_change: bool, request_id: str) -> None:
        self.graph.reset_password(organization=self.organization, tenant_id=self.tenant_id, user_id=user_id,
                                  password=password, force_change=force_change, request_id=request_id)

    def revoke_sign_in_sessions(self, *, user_id: str, request_id: str) -> bool:
        return self.graph.revoke_sign_in_sessions(tenant_id=self.tenant_id, user_id=user_id, request_id=request_id)


def graph_for(organization) -> DirectoryGraph:
    """The Graph client for the organisation's tenant: the one seam between these services and Graph."""
    tenant = linked_tenant(organization)
    return TenantGraph(graph=default_client().graph, organization=organization, tenant_id=str(tenant.tenant_id))


def linked_tenant(organization) -> MicrosoftTenant:
    tenant = MicrosoftTenant.objects.for_org(organization).filter(tenant_id__isnull=False).first()
    if tenant is None:
        raise DirectoryNotLinked("Link a Microsoft tenant before syncing its directory.")
    return tenant
