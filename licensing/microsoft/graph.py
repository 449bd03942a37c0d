"""Microsoft Graph (reference §3, §4, §2.9): licences and users in a customer tenant, GDAP and the
partner billing export in the partner tenant.

Lists are streamed page by page through ``@odata.nextLink``; nothing loads a whole directory.
``$batch`` is cut into chunks of 20 with per-item typed results, and throttled items are retried
after their own ``Retry-After`` within the retry budget.
"""

from __future__ import annotations

import contextvars
import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from core.registry import Category

from . import disclosure
from .auth import GRAPH_SCOPE, TokenProvider
from .base import ApiBase
from .disclosure import PersonalData, Purpose
from .errors import MicrosoftError, TransientFailure, error_from_response, parse_retry_after
from .http import MicrosoftHttp
from .resources import (
    BatchItemResult,
    DirectoryUser,
    ExportManifest,
    GdapAccessAssignment,
    GdapRelationship,
    LicenseChange,
    LicenseDetail,
    SubscribedSku,
)

BATCH_LIMIT = 20
MAX_PAGE = 999
DEFAULT_USER_FIELDS = ("id", "displayName", "userPrincipalName", "accountEnabled", "usageLocation", "assignedLicenses")
GDAP_PATH = "/tenantRelationships/delegatedAdminRelationships"
BILLING_PATH = "/reports/partners/billing"


class Graph(ApiBase):
    def __init__(
        self,
        *,
        http: MicrosoftHttp,
        base_url: str,
        tokens: TokenProvider,
        partner_tenant_id: str,
        auth: Literal["app", "user"] = "app",
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(http=http, base_url=f"{base_url.rstrip('/')}/v1.0")
        self.tokens = tokens
        self.partner_tenant_id = partner_tenant_id
        self.auth = auth
        self.sleep = sleep

    # -- plumbing ---------------------------------------------------------------------------------
    def _token_for(self, tenant_id: str) -> Callable[[], str]:
        if self.auth == "user":
            return lambda: self.tokens.user_token(tenant_id=tenant_id, scope=GRAPH_SCOPE)
        return lambda: self.tokens.app_token(tenant_id=tenant_id, scope=GRAPH_SCOPE)

    def _call(self, method: str, tenant_id: str, path: str, operation: str, token=None, **kwargs) -> Any:
        url = self._own_link(path) if path.startswith(("https://", "http://")) else f"{self.base_url}{path}"
        token = token or self._token_for(tenant_id)
        response = self._send(method, url, token=token, operation=f"graph.{operation}", **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _own_link(self, link: str) -> str:
        """A link read from a response (nextLink, Location, manifest) is followed with our bearer token,
        so it must point back into this Graph endpoint: anything else would hand the token to a stranger."""
        if not link.startswith(f"{self.base_url}/"):
            raise MicrosoftError("Graph answered with a link outside its own endpoint; it was not followed.",
                                 code="unexpected_link")
        return link

    def _blob_url(self, manifest: ExportManifest, name: str) -> str:
        """Blobs carry no token, but a worker must still not fetch whatever a manifest names: only Azure
        blob storage over HTTPS, or the Graph endpoint's own host (the emulator serves blobs there)."""
        root, own = urlsplit(manifest.root_directory), urlsplit(self.base_url)
        azure_blob = root.scheme == "https" and (root.hostname or "").endswith(".blob.core.windows.net")
        same_origin = (root.scheme, root.netloc) == (own.scheme, own.netloc)
        if not (azure_blob or same_origin):
            raise MicrosoftError("The export manifest points outside Azure blob storage; it was not followed.",
                                 code="unexpected_link")
        return f"{manifest.root_directory.rstrip('/')}/{quote(name, safe='/')}?{manifest.sas_token}"

    def _pages(self, tenant_id: str, path: str, operation: str, params: dict | None, headers=None) -> Iterator[list]:
        page = self._call("GET", tenant_id, path, operation, params=params, headers=headers)
        while True:
            yield page.get("value") or []
            following = page.get("@odata.nextLink")
            if not following:
                return
            page = self._call("GET", tenant_id, following, operation, headers=headers)

    # -- licences ---------------------------------------------------------------------------------
    def subscribed_skus(self, *, tenant_id: str) -> list[SubscribedSku]:
        data = self._call("GET", tenant_id, "/subscribedSkus", "subscribed_skus.list")
        return [SubscribedSku.from_json(s) for s in data.get("value") or []]

    # -- users --------------------------------------------------------------------------------------
    def iter_user_pages(
        self,
        *,
        tenant_id: str,
        select: Iterable[str] = DEFAULT_USER_FIELDS,
        filter: str | None = None,
        top: int = MAX_PAGE,
        count: bool = False,
    ) -> Iterator[list[DirectoryUser]]:
        """Directory users one page at a time (at most ``top`` in memory)."""
        params: dict[str, Any] = {"$select": ",".join(select), "$top": min(max(1, top), MAX_PAGE)}
        headers = None
        if filter:
            params["$filter"] = filter
        if filter or count:
            # Advanced queries (assignedLicenses/any(...), $count) need eventual consistency (§3.2).
            params["$count"] = "true"
            headers = {"ConsistencyLevel": "eventual"}
        for page in self._pages(tenant_id, "/users", "users.list", params, headers):
            yield [DirectoryUser.from_json(u) for u in page]

    def iter_user_page_links(
        self,
        *,
        tenant_id: str,
        select: Iterable[str] = DEFAULT_USER_FIELDS,
        top: int = MAX_PAGE,
        start_link: str | None = None,
        read_ahead: bool = False,
    ) -> Iterator[tuple[list[DirectoryUser], str | None]]:
        """Like :meth:`iter_user_pages`, with each page's ``@odata.nextLink`` (None after the last page).

        A caller that stores the link once a page is safely written can pass it back as ``start_link``
        to continue the listing where it stopped instead of listing the directory again.

        ``read_ahead`` fetches the next page in a background thread while the caller works on this one (a
        sync encrypts and writes it): the listing's requests are the same, sent one at a time, with the same
        retries and throttling waits, and a page's error is raised by the ``next()`` that asks for that page.
        The token is fetched in the caller's thread, so the fetching thread touches no database; at most one
        page more is held. Closing the iterator (or an error) waits for the page in flight, so no thread
        outlives it.
        """
        if start_link:
            if not start_link.startswith(f"{self.base_url}/users"):
                # The token goes wherever the link points: only ever to this Graph's users listing.
                raise ValueError("start_link is not a users nextLink of this Graph endpoint.")
            first: tuple[str, dict | None] = (start_link, None)
        else:
            first = ("/users", {"$select": ",".join(select), "$top": min(max(1, top), MAX_PAGE)})
        if not read_ahead:
            page = self._call("GET", tenant_id, first[0], "users.list", params=first[1])
            while True:
                following = page.get("@odata.nextLink") or None
                yield [DirectoryUser.from_json(u) for u in page.get("value") or []], following
                if not following:
                    return
                page = self._call("GET", tenant_id, following, "users.list")
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-pages")

        def fetch(path: str, params: dict | None = None) -> Future:
            try:
                bearer = self._token_for(tenant_id)()
            except Exception as exc:  # raised by the next() that asks for this page, as its fetch's errors are
                failed: Future = Future()
                failed.set_exception(exc)
                return failed
            return pool.submit(contextvars.copy_context().run, self._call, "GET", tenant_id, path, "users.list",
                               params=params, token=lambda: bearer)

        try:
            pending = fetch(*first)
            while True:
                page = pending.result()
                following = page.get("@odata.nextLink") or None
                if following:
                    pending = fetch(following)
                yield [DirectoryUser.from_json(u) for u in page.get("value") or []], following
                if not following:
                    return
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def iter_users(self, **kwargs) -> Iterator[DirectoryUser]:
        for page in self.iter_user_pages(**kwargs):
            yield from page

    def get_user(
        self, *, tenant_id: str, user_key: str, select: Iterable[str] = DEFAULT_USER_FIELDS, organization=None
    ) -> DirectoryUser:
        """``user_key`` is an object id or a UPN; looking up by UPN sends it to Microsoft, so it is logged."""
        personal = None
        if "@" in user_key:
            personal = PersonalData.of(
                [Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=organization
            )
        data = self._call(
            "GET",
            tenant_id,
            f"/users/{quote(user_key)}",
            "users.get",
            params={"$select": ",".join(select)},
            personal=personal,
        )
        return DirectoryUser.from_json(data)

    def create_user(
        self,
        *,
        organization,
        tenant_id: str,
        request_id: str,
        display_name: str,
        mail_nickname: str,
        user_principal_name: str,
        password: str,
        usage_location: str | None = None,
        account_enabled: bool = True,
        force_change_password: bool = True,
        given_name: str | None = None,
        surname: str | None = None,
        job_title: str | None = None,
    ) -> DirectoryUser:
        """POST /users (learn.microsoft.com/graph/api/user-post-users): 201 with the new user.

        A user principal name in use answers 400 with an ``ObjectConflict`` detail: :class:`ObjectConflict`.
        A password the tenant's policy refuses: :class:`PasswordRejected`. Graph has no idempotency key
        for this call: a caller retrying after a lost answer must look the user up by UPN.
        """
        body: dict[str, Any] = {
            "accountEnabled": account_enabled,
            "displayName": display_name,
            "mailNickname": mail_nickname,
            "userPrincipalName": user_principal_name,
            "passwordProfile": {"forceChangePasswordNextSignIn": force_change_password, "password": password},
        }
        optional = {"usageLocation": usage_location, "givenName": given_name, "surname": surname,
                    "jobTitle": job_title}
        body.update({key: value for key, value in optional.items() if value})
        personal = PersonalData.of(
            [Category.IDENTITY, Category.CONTACT, Category.SECURITY], purpose=Purpose.LICENSE_MANAGEMENT,
            organization=organization,
        )
        data = self._call(
            "POST", tenant_id, "/users", "users.create", json=body, request_id=request_id, personal=personal
        )
        return DirectoryUser.from_json(data)

    def update_user(self, *, organization, tenant_id: str, user_id: str, changes: dict, request_id: str) -> None:
        """PATCH a user, e.g. ``{"usageLocation": "DE"}`` before licence assignment."""
        personal = PersonalData.of([Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=organization)
        self._call(
            "PATCH",
            tenant_id,
            f"/users/{quote(user_id)}",
            "users.update",
            json=changes,
            request_id=request_id,
            personal=personal,
        )

    def set_account_enabled(self, *, organization, tenant_id: str, user_id: str, enabled: bool,
                            request_id: str) -> None:
        """Block (``False``) or unblock sign-in: PATCH ``accountEnabled``, 204 No Content. Idempotent."""
        self.update_user(organization=organization, tenant_id=tenant_id, user_id=user_id,
                         changes={"accountEnabled": enabled}, request_id=request_id)

    def reset_password(self, *, organization, tenant_id: str, user_id: str, password: str,
                       force_change: bool = True, request_id: str) -> None:
        """An administrator's password reset: PATCH ``passwordProfile`` (user-update, example "Update the
        passwordProfile of a user and reset their password"); needs User-PasswordProfile.ReadWrite.All.
        Setting the same password again is harmless, so a retry with the same password is safe."""
        personal = PersonalData.of([Category.SECURITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=organization)
        self._call(
            "PATCH",
            tenant_id,
            f"/users/{quote(user_id)}",
            "users.reset_password",
            json={"passwordProfile": {"forceChangePasswordNextSignIn": force_change, "password": password}},
            request_id=request_id,
            personal=personal,
        )

    def revoke_sign_in_sessions(self, *, tenant_id: str, user_id: str, request_id: str) -> bool:
        """POST /users/{id}/revokeSignInSessions: invalidates refresh tokens and browser sessions (Graph
        warns it can take a few minutes). Returns Graph's ``value`` (true)."""
        data = self._call("POST", tenant_id, f"/users/{quote(user_id)}/revokeSignInSessions",
                          "users.revoke_sign_in_sessions", request_id=request_id)
        return bool((data or {}).get("value", True))

    def assign_license(
        self,
        *,
        organization,
        tenant_id: str,
        user_id: str,
        request_id: str,
        add_sku_ids: Iterable[str] = (),
        remove_sku_ids: Iterable[str] = (),
        disabled_plans: dict[str, list[str]] | None = None,
    ) -> DirectoryUser:
        change = LicenseChange(user_id, list(add_sku_ids), list(remove_sku_ids), disabled_plans or {})
        personal = PersonalData.of([Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=organization)
        data = self._call(
            "POST",
            tenant_id,
            f"/users/{quote(user_id)}/assignLicense",
            "users.assign_license",
            json=change.body(),
            request_id=request_id,
            personal=personal,
        )
        return DirectoryUser.from_json(data)

    def license_details(self, *, tenant_id: str, user_id: str) -> list[LicenseDetail]:
        data = self._call("GET", tenant_id, f"/users/{quote(user_id)}/licenseDetails", "users.license_details")
        return [LicenseDetail.from_json(d) for d in data.get("value") or []]

    # -- $batch ---------------------------------------------------------------------------------------
    def batch(
        self,
        *,
        tenant_id: str,
        requests: list[dict],
        request_id: str,
        personal: PersonalData | None = None,
        operation: str = "batch",
        in_flight: int = 1,
    ) -> list[BatchItemResult]:
        """Run ``requests`` ({"id", "method", "url", "body"?}) in chunks of 20; one result per request,
        in input order. Items answered 429/5xx are resent (alone) after their Retry-After, up to the
        retry budget; what still fails is returned with its typed error.

        ``in_flight`` > 1 sends up to that many chunks at once (threads): each still waits out its own
        Retry-After, so the throttle paces them. Their disclosures are logged first, here, in the caller's
        thread and transaction, and the token is fetched here once: the threads touch no database.
        """
        chunks = []
        for index in range(0, len(requests), BATCH_LIMIT):
            chunk = requests[index : index + BATCH_LIMIT]
            chunk_personal = (
                PersonalData.of(
                    personal.categories,
                    purpose=personal.purpose,
                    organization=personal.organization,
                    subject_count=len(chunk),
                )
                if personal
                else None
            )
            chunks.append((chunk, _derived_id(request_id, f"chunk-{index // BATCH_LIMIT}"), chunk_personal))
        results: dict[str, BatchItemResult] = {}
        if in_flight <= 1 or len(chunks) == 1:
            for chunk, chunk_id, chunk_personal in chunks:
                results.update(self._run_chunk(tenant_id, chunk, chunk_id, chunk_personal, operation))
        else:
            if personal is not None:
                disclosure.record_many([(chunk_personal, chunk_id) for _, chunk_id, chunk_personal in chunks],
                                       operation=f"graph.{operation}")
            bearer = self._token_for(tenant_id)()
            with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="graph-batch") as pool:
                sent = [
                    pool.submit(contextvars.copy_context().run, self._run_chunk, tenant_id, chunk, chunk_id, None,
                                operation, lambda: bearer)
                    for chunk, chunk_id, _ in chunks
                ]
                for future in sent:
                    results.update(future.result())
        return [results[str(r["id"])] for r in requests]

    def _run_chunk(self, tenant_id, chunk, chunk_id, personal, operation, token=None) -> dict[str, BatchItemResult]:
        pending = {str(r["id"]): r for r in chunk}
        done: dict[str, BatchItemResult] = {}
        for attempt in range(1, self.http.retry_budget + 1):
            body = {"requests": [_batch_request(r) for r in pending.values()]}
            attempt_id = chunk_id if attempt == 1 else _derived_id(chunk_id, f"retry-{attempt}")
            data = self._call(
                "POST",
                tenant_id,
                "/$batch",
                operation,
                json=body,
                request_id=attempt_id,
                personal=personal if attempt == 1 else None,
                token=token,
            )
            waits = []
            for item in data.get("responses") or []:
                key, status = str(item["id"]), int(item.get("status", 500))
                headers = item.get("headers") or {}
                if status < 400:
                    done[key] = BatchItemResult(key, status, item.get("body"))
                    pending.pop(key, None)
                    continue
                error = error_from_response(
                    status=status, body=item.get("body"), headers=headers, request_id=attempt_id, correlation_id=""
                )
                done[key] = BatchItemResult(key, status, item.get("body"), error)
                if not error.retryable:
                    pending.pop(key, None)
                else:
                    waits.append(parse_retry_after(headers.get("Retry-After")) or self.http.backoff(attempt))
            if not pending:
                break
            if attempt < self.http.retry_budget:
                self.sleep(max(waits or [0]))
        for key in pending:
            done.setdefault(key, BatchItemResult(key, 0, None, TransientFailure("No response in batch.")))
        return done

    def assign_licenses(
        self, *, organization, tenant_id: str, changes: list[LicenseChange], request_id: str
    ) -> list[BatchItemResult]:
        """Many users' assignLicense calls through $batch; results keyed by user id, in input order."""
        requests = [
            {
                "id": change.user_id,
                "method": "POST",
                "url": f"/users/{change.user_id}/assignLicense",
                "body": change.body(),
            }
            for change in changes
        ]
        personal = PersonalData.of(
            [Category.IDENTITY],
            purpose=Purpose.LICENSE_MANAGEMENT,
            organization=organization,
            subject_count=len(changes),
        )
        return self.batch(
            tenant_id=tenant_id,
            requests=requests,
            request_id=request_id,
            personal=personal,
            operation="users.assign_license_batch",
        )

    # -- GDAP (partner tenant) ----------------------------------------------------------------------
    def create_gdap_relationship(
        self,
        *,
        organization,
        request_id: str,
        display_name: str,
        customer_tenant_id: str,
        customer_display_name: str,
        role_ids: Iterable[str],
        duration: str = "P730D",
        auto_extend_duration: str = "PT0S",
    ) -> GdapRelationship:
        body = {
            "displayName": display_name,
            "duration": duration,
            "customer": {"tenantId": customer_tenant_id, "displayName": customer_display_name},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r} for r in role_ids]},
            "autoExtendDuration": auto_extend_duration,
        }
        personal = PersonalData.of([Category.TENANT], purpose=Purpose.PROVISIONING, organization=organization)
        data = self._call(
            "POST",
            self.partner_tenant_id,
            GDAP_PATH,
            "gdap.create",
            json=body,
            request_id=request_id,
            personal=personal,
        )
        return GdapRelationship.from_json(data)

    def get_gdap_relationship(self, *, relationship_id: str) -> GdapRelationship:
        return GdapRelationship.from_json(
            self._call("GET", self.partner_tenant_id, f"{GDAP_PATH}/{relationship_id}", "gdap.get")
        )

    def iter_gdap_relationships(self, *, filter: str | None = None) -> Iterator[GdapRelationship]:
        params = {"$filter": filter} if filter else None
        for page in self._pages(self.partner_tenant_id, GDAP_PATH, "gdap.list", params):
            yield from (GdapRelationship.from_json(r) for r in page)

    def lock_gdap_for_approval(self, *, relationship_id: str, request_id: str) -> dict:
        """Submit the relationship for the customer's approval; returns the request resource."""
        return self._call(
            "POST",
            self.partner_tenant_id,
            f"{GDAP_PATH}/{relationship_id}/requests",
            "gdap.lock_for_approval",
            json={"action": "lockForApproval"},
            request_id=request_id,
        )

    def terminate_gdap_relationship(self, *, relationship_id: str, request_id: str) -> dict:
        return self._call(
            "POST",
            self.partner_tenant_id,
            f"{GDAP_PATH}/{relationship_id}/requests",
            "gdap.terminate",
            json={"action": "terminate"},
            request_id=request_id,
        )

    def create_gdap_access_assignment(
        self, *, relationship_id: str, security_group_id: str, role_ids: Iterable[str], request_id: str
    ) -> GdapAccessAssignment:
        body = {
            "accessContainer": {"accessContainerId": security_group_id, "accessContainerType": "securityGroup"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r} for r in role_ids]},
        }
        data = self._call(
            "POST",
            self.partner_tenant_id,
            f"{GDAP_PATH}/{relationship_id}/accessAssignments",
            "gdap.access_assignments.create",
            json=body,
            request_id=request_id,
        )
        return GdapAccessAssignment.from_json(data)

    def list_gdap_access_assignments(self, *, relationship_id: str) -> list[GdapAccessAssignment]:
        pages = self._pages(
            self.partner_tenant_id,
            f"{GDAP_PATH}/{relationship_id}/accessAssignments",
            "gdap.access_assignments.list",
            None,
        )
        return [GdapAccessAssignment.from_json(a) for page in pages for a in page]

    # -- partner billing export (partner tenant) ------------------------------------------------------
    def request_unbilled_usage_export(
        self, *, currency: str = "USD", billing_period: str = "current", attribute_set: str = "full"
    ) -> str:
        """Start the async export; returns the operation URL to poll."""
        return self._start_export(
            "/usage/unbilled/export",
            {"currencyCode": currency, "billingPeriod": billing_period, "attributeSet": attribute_set},
        )

    def request_billed_usage_export(self, *, invoice_id: str, attribute_set: str = "full") -> str:
        return self._start_export("/usage/billed/export", {"invoiceId": invoice_id, "attributeSet": attribute_set})

    def _start_export(self, path: str, body: dict) -> str:
        response = self._send(
            "POST",
            f"{self.base_url}{BILLING_PATH}{path}",
            token=self._token_for(self.partner_tenant_id),
            operation="graph.billing.export",
            json=body,
        )
        return response.headers["Location"]

    def get_export_operation(self, *, operation_url: str) -> dict:
        return self._call("GET", self.partner_tenant_id, operation_url, "billing.export_operation")

    def wait_for_export(self, *, operation_url: str, max_polls: int = 60, poll_seconds: float = 10.0) -> ExportManifest:
        """Poll until the export succeeds; a failed export raises with Microsoft's error."""
        for _ in range(max_polls):
            operation = self.get_export_operation(operation_url=operation_url)
            status = operation.get("status")
            if status == "succeeded":
                manifest_url = operation["resourceLocation@odata.navigationLink"]
                return ExportManifest.from_json(
                    self._call("GET", self.partner_tenant_id, manifest_url, "billing.manifest")
                )
            if status == "failed":
                error = operation.get("error") or {}
                raise MicrosoftError(error.get("message", "Export failed."), code=str(error.get("code", "")))
            self.sleep(poll_seconds)
        raise TransientFailure(f"Billing export still running after {max_polls} polls.")

    def iter_export_rows(self, manifest: ExportManifest) -> Iterator[dict]:
        """Stream every JSON line of every blob; blobs are gzip JSON-lines fetched with the SAS token
        (no bearer token: the blob store is not Graph)."""
        for name in manifest.blob_names:
            url = self._blob_url(manifest, name)
            response = self._send("GET", url, token=None, operation="graph.billing.blob", stream=True)
            with response, gzip.GzipFile(fileobj=response.raw) as lines:
                for line in lines:
                    if line.strip():
                        yield json.loads(line)


def _batch_request(request: dict) -> dict:
    item = {"id": str(request["id"]), "method": request["method"], "url": request["url"]}
    if "body" in request:
        item["body"] = request["body"]
        item["headers"] = {"Content-Type": "application/json", **request.get("headers", {})}
    elif request.get("headers"):
        item["headers"] = request["headers"]
    return item


def _derived_id(request_id: str, part: str) -> str:
    """A stable id for one piece of a logical operation: the same on every redelivery."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"msrequest:{request_id}/{part}"))
