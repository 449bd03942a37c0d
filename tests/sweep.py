"""Route discovery and checks for the cross-tenant sweep (tests/test_tenancy_sweep.py).

Every URL pattern is found by walking the resolver, so a route added later is swept
without anyone remembering to. A URL kwarg the sweep does not understand fails the
sweep, so whoever adds it decides how it is swept.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# Not customer routes: the staff admin (guarded by grants and OTP), API schema and docs.
EXCLUDED_PREFIXES = ("admin/", "api/schema/", "api/docs/")

ORG_KWARG = "org_slug"
ID_KWARG = re.compile(r"^(pk|id|uuid|object_id|[a-z0-9_]+_(id|pk|uuid))$")
# Kwargs that name no tenant object (tokens in emailed links and the like): such a
# route is swept only for its org_slug/id kwargs, with a harmless dummy for these.
NON_TENANT_KWARGS = {
    "uidb64": "MQ",
    "token": "set-password",
    "path": "x",
    "decision": "approve",  # orders/<pk>/<decision>/: the action, the pk is the object
    "report": "usage",  # usage/export/<report>.csv: a report name; the org comes from org_slug
    "version": "2026-01-01",  # privacy/notice/<version>/: a public notice version, no tenant data
    "reference": "PR-AAAA-BBBB",  # privacy/mine/<reference>/: only among the signed-in person's own requests
}


# Org- or API routes without object ids must answer the caller's own organisation with 200, except these,
# which answer GET otherwise by design.
NOT_200 = {
    "o/<slug:org_slug>/tenant/consent/": 405,  # POST-only actions: the form lives on the page above them
    "o/<slug:org_slug>/tenant/refresh/": 405,
    "o/<slug:org_slug>/tenant/credentials/done/": 405,
    "o/<slug:org_slug>/licenses/sync/": 405,
    "o/<slug:org_slug>/licenses/bulk/selection/": 405,
    "o/<slug:org_slug>/usage/inactive/reclaim/": 405,
    "o/<slug:org_slug>/usage/reductions/": 405,
    "o/<slug:org_slug>/notifications/read/": 405,
    "o/<slug:org_slug>/usage/preferences/": 302,  # moved to licensing-settings; the old address redirects
    "o/<slug:org_slug>/licenses/users/new/": 302,  # creating a user needs a recent second factor first
    "o/<slug:org_slug>/billing/payment-methods/add/": 405,  # POST-only: starts the processor's card page
    "o/<slug:org_slug>/billing/payment-methods/added/": 302,  # the processor's return: back to the list
    "o/<slug:org_slug>/team/reseller-access/policy/": 405,  # POST-only: the form lives on the page above it
}

# List routes, and the tenant models whose rows, seeded for the caller's own organisation, must appear on them
# (by id, in a link or a field): a list that answers 200 but hides the caller's own rows fails the sweep.
OWN_ROWS = {
    "o/<slug:org_slug>/team/": {"accounts.Invitation", "accounts.Membership"},
    "o/<slug:org_slug>/team/api-keys/": {"accounts.ApiKey"},
    "o/<slug:org_slug>/team/reseller-access/": {"accounts.StaffGrant"},
    "o/<slug:org_slug>/orders/": {"licensing.Order"},
    "o/<slug:org_slug>/subscriptions/": {"licensing.Subscription"},
    "o/<slug:org_slug>/operations/": {"licensing.ProvisioningOperation"},
    "o/<slug:org_slug>/licenses/users/": {"licensing.DirectoryUser"},
    "o/<slug:org_slug>/licenses/bulk/": {"licensing.TenantSku"},
    "o/<slug:org_slug>/usage/": {"licensing.ReductionProposal"},
    "api/v1/^members/$": {"accounts.Membership"},
    "api/v1/^invitations/$": {"accounts.Invitation"},
    "api/v1/^api-keys/$": {"accounts.ApiKey"},
    "api/v1/^subscriptions/$": {"licensing.Subscription"},
    "api/v1/^provisioning-operations/$": {"licensing.ProvisioningOperation"},
    "api/v1/^directory-users/$": {"licensing.DirectoryUser"},
    "api/v1/^directory-syncs/$": {"licensing.DirectorySync"},
    "api/v1/^license-assignments/$": {"licensing.LicenseAssignment"},
    "api/v1/^license-bulk-jobs/$": {"licensing.BulkJob"},
    "api/v1/^usage/$": {"licensing.TenantSku"},
    "api/v1/^usage/history/$": {"licensing.TenantSku"},
    "api/v1/^invoices/$": {"billing.Invoice"},
    "api/v1/^payment-methods/$": {"billing.PaymentMethod"},
}
# API list routes over a tenant model whose seeded row is not expected on them, and why.
OWN_ROWS_EXEMPT = {
    "api/v1/^audit-events/$": "audit events have integer ids, which would match any digit on the page",
    "api/v1/^usage/inactive/$": "lists only users inactive for 30 days; the seeded user is not",
    "api/v1/^renewals/$": "lists only subscriptions with a renewal ahead; the seeded one has no term end",
    "api/v1/^directory-user-operations/$": "lists only directory-user actions; the seeded operation is a checkout "
    "(the same table is listed with it on provisioning-operations)",
}


@dataclass(frozen=True)
class Route:
    pattern: str  # the full pattern, for messages
    name: str
    kwargs: tuple[str, ...]
    resolver_chain: tuple  # for reverse() by pattern
    callback: object

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("api/v1/")

    @property
    def id_kwargs(self) -> tuple[str, ...]:
        return tuple(k for k in self.kwargs if ID_KWARG.match(k))

    @property
    def has_org(self) -> bool:
        return ORG_KWARG in self.kwargs

    def unknown_kwargs(self) -> list[str]:
        return [k for k in self.kwargs if k != ORG_KWARG and not ID_KWARG.match(k) and k not in NON_TENANT_KWARGS]

    def view_model(self):
        """The model a generic view names, if any: narrows which ids are tried."""
        view = getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)
        model = getattr(view, "model", None)
        queryset = getattr(view, "queryset", None)
        return model or getattr(queryset, "model", None)


def _kwarg_names(pattern) -> list[str]:
    # Read the names from the route text: Django shares one cached converters dict between
    # every empty-prefix include, so pattern.converters can name kwargs a route does not take.
    return [match.group("name") or match.group("rname") for match in _PLACEHOLDER.finditer(str(pattern))]


def walk_routes(resolver: URLResolver | None = None, prefix: str = "", kwargs: tuple = (), chain: tuple = ()):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        part = str(entry.pattern)
        names = tuple(_kwarg_names(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from walk_routes(entry, prefix + part, kwargs + names, (*chain, entry))
        elif isinstance(entry, URLPattern):
            yield Route(prefix + part, entry.name or "", kwargs + names, (*chain, entry), entry.callback)


def all_swept_routes() -> list[Route]:
    return [r for r in walk_routes() if not r.pattern.startswith(EXCLUDED_PREFIXES) and (r.kwargs or r.is_api)]


def swept_routes() -> list[Route]:
    """Routes the sweep can request; those with unknown kwargs fail test_every_route_kwarg_is_understood."""
    return [r for r in all_swept_routes() if not r.unknown_kwargs()]


_PLACEHOLDER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>[^)]*\)")


def build_path(route: Route, values: dict[str, str]) -> str:
    """Fill a route's pattern with values. Works for path() and simple re_path() patterns."""

    def fill(match):
        name = match.group("name") or match.group("rname")
        return str(values[name])

    path = _PLACEHOLDER.sub(fill, route.pattern)
    path = path.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + path


def candidate_objects(route: Route, kwarg: str, objects: dict[str, object]) -> list[object]:
    """Which of the other org's objects to put in an id kwarg: the one the name points at, else all."""
    stem = re.sub(r"_(id|pk|uuid)$", "", kwarg).replace("_", "")
    if stem in ("pk", "id", "uuid", "object"):
        model = route.view_model()
        if model is not None:
            matched = [o for o in objects.values() if type(o) is model]
            if matched:
                return matched
        return list(objects.values())
    matched = [o for o in objects.values() if type(o)._meta.model_name.endswith(stem)]
    return matched or list(objects.values())


# Past this many combinations of candidate ids, a route's kwargs are tried one position at a time.
MAX_COMBINATIONS = 100


def _one_position_at_a_time(choices: list[list[str]]):
    """Each candidate in each position, the other positions at their first candidate: every id is still put in
    every kwarg, without the product of candidates no name narrowed (two such kwargs were 47 x 47 requests)."""
    firsts = [options[0] for options in choices]
    yield tuple(firsts)
    for position, options in enumerate(choices):
        for option in options[1:]:
            yield (*firsts[:position], option, *firsts[position + 1 :])


def value_sets(route: Route, org_slug: str, objects: dict[str, object]):
    """The other org's object ids for the route's id kwargs: every combination while there are at most
    MAX_COMBINATIONS, else each candidate in each kwarg with the others fixed."""
    choices = [[str(o.pk) for o in candidate_objects(route, k, objects)] for k in route.id_kwargs]
    if not choices:
        combos = [()]
    elif math.prod(len(options) for options in choices) <= MAX_COMBINATIONS:
        combos = itertools.product(*choices)
    else:
        combos = _one_position_at_a_time(choices)
    for combo in combos:
        values = dict(NON_TENANT_KWARGS)
        values.update(zip(route.id_kwargs, combo, strict=True))
        if route.has_org:
            values[ORG_KWARG] = org_slug
        yield values


def nowhere_values(route: Route, org_slug: str) -> dict[str, str]:
    """The route's kwargs with ids that exist in no organisation: the control for differential checks."""
    values = dict(NON_TENANT_KWARGS)
    values.update({k: str(uuid.uuid4()) for k in route.id_kwargs})
    if route.has_org:
        values[ORG_KWARG] = org_slug
    return values
