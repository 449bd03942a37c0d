"""Base classes for every organisation-scoped API view.

They run the whole handler inside the caller's tenant context, build every queryset
through ``scoped_queryset()`` and re-filter it by the organisation in a
``get_queryset`` that subclasses cannot override (PostHog's rule), and honour
``Idempotency-Key`` on POST. Another organisation's object is simply not in the
queryset, so it is a 404.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.db.models import QuerySet
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.generics import GenericAPIView
from rest_framework.viewsets import GenericViewSet

from core.tenancy import tenant_context

from . import idempotency
from .errors import ApiError, request_too_large


def _declared_length(request) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        length = -1
    if length < 0:
        raise ApiError("The Content-Length header is not a valid length.", code="bad_request")
    return length


def _refuse_nul_in_query(request) -> None:
    """No stored text can hold a NUL character (PostgreSQL refuses it), so no filter can match one:
    say so, in the one error shape, instead of letting the database fail on it."""
    for name, values in request.query_params.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            shown = name.replace("\x00", "")[:50]
            message = f"The query parameter '{shown}' contains a NUL character (%00); remove it."
            raise ApiError(message, code="invalid_parameter", fields={shown: [message]})


class OrganizationScopedMixin:
    """The machinery shared by :class:`OrganizationAPIView` and :class:`OrganizationViewSet`."""

    # The model listed or fetched; with scoped_queryset() it lets the schema generator introspect the view.
    model = None
    idempotent_methods = frozenset({"POST"})

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not override get_queryset(); implement scoped_queryset() instead, "
                "so the organisation filter cannot be bypassed."
            )

    @classmethod
    def as_view(cls, *args, **initkwargs):
        # The view manages its own transactions: the idempotency record must be committed
        # before the handler runs, and the handler runs in the tenant context's transaction.
        return transaction.non_atomic_requests(super().as_view(*args, **initkwargs))

    # --- scoping -------------------------------------------------------------
    @property
    def organization(self):
        return getattr(self.request, "organization", None)

    @property
    def actor(self):
        """Who acts, for services and audit: the API key, or the signed-in user."""
        auth = getattr(self.request, "auth", None)
        return auth if hasattr(auth, "prefix") else self.request.user

    def scoped_queryset(self) -> QuerySet:
        raise NotImplementedError(f"{type(self).__name__} must implement scoped_queryset().")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.model._base_manager.none()
        if self.organization is None:
            raise ApiError("No organisation selected.", code="permission_denied", status_code=403)
        return self.scoped_queryset().filter(organization=self.organization)

    # --- request lifecycle ---------------------------------------------------
    def initial(self, request, *args, **kwargs):
        self._tenant_scope = None
        self._idempotency_claim = None
        if _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise request_too_large()
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # Before the permission check, so a missing method reads as 405, not "your role does not allow this".
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        _refuse_nul_in_query(request)
        organization = self.organization
        if organization is None:
            raise ApiError("No organisation selected.", code="permission_denied", status_code=403)
        if request.method in self.idempotent_methods and idempotency.HEADER in request.headers:
            self._claim_idempotency_key(request, organization)
        if request.method in ("POST", "PUT", "PATCH") and _declared_length(request) > 0:
            # Parse now, whether or not the handler reads the body: a malformed one (bad JSON, nesting
            # past core.api.parsers.MAX_JSON_DEPTH) is a 400 on every write endpoint, before anything runs.
            request.data  # noqa: B018
        self._tenant_scope = tenant_context(organization)
        self._tenant_scope.__enter__()

    def _claim_idempotency_key(self, request, organization) -> None:
        key = idempotency.validate_key(request.headers[idempotency.HEADER])
        try:
            body = request._request.body
        except RequestDataTooBig as exc:
            raise request_too_large() from exc
        fingerprint = idempotency.request_fingerprint(request.method, request.path, body)
        self._idempotency_claim = idempotency.claim(
            organization=organization, caller=idempotency.caller_of(self.actor), key=key, fingerprint=fingerprint
        )

    def _leave_tenant_scope(self, exc: BaseException | None) -> None:
        scope, self._tenant_scope = getattr(self, "_tenant_scope", None), None
        if scope is None:
            return
        if exc is None:
            scope.__exit__(None, None, None)
        else:
            # Passing the exception in rolls the handler's transaction back: nothing half-written.
            scope.__exit__(type(exc), exc, exc.__traceback__)

    def handle_exception(self, exc):
        self._leave_tenant_scope(exc)
        if isinstance(exc, idempotency.IdempotentReplay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except BaseException:
            self._release_idempotency_key()
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        try:
            self._leave_tenant_scope(None)
        except BaseException:
            self._release_idempotency_key()
            raise
        claim, self._idempotency_claim = getattr(self, "_idempotency_claim", None), None
        if claim is not None:
            claim.store(response)
        return super().finalize_response(request, response, *args, **kwargs)

    def _release_idempotency_key(self) -> None:
        claim, self._idempotency_claim = getattr(self, "_idempotency_claim", None), None
        if claim is not None:
            claim.release()

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # A failure outside the handler (rendering, an uncaught error) must not leak the scope.
            if getattr(self, "_tenant_scope", None) is not None:
                self._leave_tenant_scope(sys.exc_info()[1] or RuntimeError("response was not finalised"))
            self._release_idempotency_key()


class OrganizationAPIView(OrganizationScopedMixin, GenericAPIView):
    """A single-purpose endpoint of the caller's organisation."""


class OrganizationViewSet(OrganizationScopedMixin, GenericViewSet):
    """A resource of the caller's organisation."""
