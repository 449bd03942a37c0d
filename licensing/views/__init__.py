"""Dashboard pages of the licensing app, one module per area, all under /o/<org_slug>/.

- onboarding: tenant link or creation, agreement, consent;
- catalog: catalog, purchase, orders;
- subscriptions: subscriptions, seat changes, provisioning operations;
- directory: licenses, directory sync and users, single assign / unassign;
- bulk: bulk jobs; usage: usage, reclaim, reductions, renewals, exports;
- notifications; settings: the one licensing settings page.

Thin: parse input, call a service or selector, render. Every page runs in the tenant context set
by ``OrganizationMixin``; objects are fetched through ``for_org`` so another tenant's id is a 404.
"""

import uuid

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404

from core.audit import Actor
from licensing import nce
from licensing.models import TenantSku

PAGE_SIZE = 50


def actor_of(request) -> Actor:
    return Actor.user(request.user)


def error_text(exc: Exception) -> str:
    if isinstance(exc, nce.RuleViolation):
        return str(exc)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    raise exc


def well_formed_uuids(values) -> list[uuid.UUID]:
    """The well-formed ids among posted values: a tampered id is simply not found, never a 500."""
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return valid


def tenant_sku_or_404(organization, value) -> TenantSku:
    found = well_formed_uuids([value]) if value else []
    return get_object_or_404(TenantSku.objects.for_org(organization), pk=found[0] if found else None)
