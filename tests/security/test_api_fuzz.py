"""Schemathesis against the OpenAPI schema: two organisations, every customer role, zero 5xx and zero
responses that contradict the schema.

The schema is the one drf-spectacular builds from the views (the same document `/api/schema/` serves).
For every operation Schemathesis generates requests, valid (positive) and invalid (negative) for the
schema; each one is sent by the next identity in turn (an API key of each role in each organisation)
through the real WSGI application, with the generated path ids and again with the ids of the caller's
own objects, so the views get past their lookups and do their real work. The bound (examples per
operation) keeps the run to about 35 s of CPU. `.ci/nightly` (`make fuzz`) is the deeper variant: this same
test with more examples (``FUZZ_EXAMPLES``) and a new seed each night (``FUZZ_SEED``), or Schemathesis' CLI
against a staging server with one API key per identity (docs/decisions/027-hardening.md).

Schemathesis is used as a library here: its pytest plugin is switched off in pyproject.toml (addopts), so it
costs the rest of the suite nothing. It does not find cross-tenant leaks: tests/test_tenancy_sweep.py does.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import uuid
from collections import Counter

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from portal.wsgi import application
from tests.tenant_objects import TenantWorld

pytestmark = pytest.mark.django_db

# Examples per operation and generation mode, each sent by the next of the eight identities in turn,
# twice for operations with ids. FUZZ_EXAMPLES raises it (the nightly run, or locally to search harder);
# FUZZ_SEED explores other examples than CI's fixed, derandomised set, reproducibly.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 5)
SEED = os.environ.get("FUZZ_SEED", "")
CHECKS = [not_a_server_error, response_schema_conformance]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Identity:
    def __init__(self, org, role, key):
        self.org, self.role, self.key = org, role, key
        self.headers = {"Authorization": f"Bearer {key}"}

    def __str__(self):
        return f"{self.org.slug}/{self.role}"


@pytest.fixture
def identities():
    world = TenantWorld()
    result = []
    for slug in ("fuzz-a", "fuzz-b"):
        org = OrganizationFactory(slug=slug)
        owner = UserFactory()
        MembershipFactory(user=owner, organization=org, role=Role.OWNER)
        org.fuzz_objects = world.build_all(org)
        for role in Role.values:
            _, key = api_key_create(organization=org, name=f"fuzz {role}", role=role, expires_at=None, actor=owner)
            result.append(Identity(org, role, key))
    return result


def in_test_transaction(environ, start_response):
    """The portal's WSGI application without closing the database connection after each request (as
    Django's test client does): the connection holds the test's transaction and the seeded organisations."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema():
    raw = SchemaGenerator().get_schema(request=None, public=True)
    raw = json.loads(json.dumps(raw, cls=DjangoJSONEncoder))  # lazy translation strings to plain ones
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = in_test_transaction
    return schema


def _own_ids(operation, identity, cache) -> dict[str, str] | None:
    """Path parameters naming an object of the caller's organisation that the collection's detail route shows."""
    names = PLACEHOLDER.findall(operation.path)
    if not names:
        return None
    detail = operation.path[: operation.path.index("}") + 1] + "/"
    key = (detail, identity.org.slug)
    if key not in cache:
        cache[key] = None
        view = getattr(resolve(PLACEHOLDER.sub(str(uuid.uuid4()), detail, count=1)).func, "cls", None)
        model = getattr(view, "model", None)
        objects = identity.org.fuzz_objects.values()
        candidates = [o for o in objects if model is not None and isinstance(o, model)] or list(objects)
        owner = next(i for i in _identities_of(identity) if i.role == Role.OWNER)
        client = Client(headers=owner.headers)
        for obj in candidates:
            if client.get(PLACEHOLDER.sub(str(obj.pk), detail, count=1)).status_code == 200:
                cache[key] = {name: str(obj.pk) for name in names}
                break
    return cache[key]


_ALL: list[Identity] = []


def _identities_of(identity):
    return [i for i in _ALL if i.org.pk == identity.org.pk]


def test_api_answers_every_generated_request_without_5xx_or_schema_drift(identities):
    _ALL[:] = identities
    schema = load_schema()
    failures: dict[str, str] = {}
    id_cache: dict = {}
    turn, sent = itertools.count(), Counter()
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/api/v1/")]
    assert len(operations) >= 25

    def send(case, identity, label):
        response = case.call(headers=identity.headers)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # every failure is reported together
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            failures.setdefault(f"{label} {first}", f"{identity}: {str(exc)[:1200]}")

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=not SEED,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                identity = identities[next(turn) % len(identities)]  # each identity in turn
                sent[str(identity)] += 1
                send(case, identity, label)
                own = _own_ids(operation, identity, id_cache)
                if own:
                    case.path_parameters.update(own)
                    send(case, identity, label)

            if SEED:
                run = seed(int(SEED))(run)
            run()
    print(f"api fuzz: {EXAMPLES} examples per operation and mode, seed {SEED or 'fixed'}, "
          f"{sum(sent.values())} cases over {len(operations)} operations, {len(failures)} distinct failures")
    assert len(sent) == len(identities) == 8 and min(sent.values()) >= 25, sent
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(
        f"{k}\n{v}" for k, v in sorted(failures.items())
    )
