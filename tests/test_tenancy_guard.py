"""Tenancy fails closed, and the escape hatches stay where they belong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from accounts.models import ApiKey
from accounts.tests.factories import OrganizationFactory
from core.tenancy import current_org_ids, tenant_context

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "var", "node_modules", ".git", "msemulator", "__pycache__", "mutants"}

# Whole files allowed to use ``unscoped_*`` (DESIGN.md §4 "Tenancy fails closed"): only the kernel that
# defines the escape hatches. Everyone else is named by function below, each with its reason.
ALLOWED_FILES = {
    "core/tenancy.py",  # defines the escape hatches
    "core/models/base.py",  # attaches unscoped_objects to TenantModel
    "core/models/audit.py",  # attaches unscoped_objects to the audit chain's events
    "accounts/authentication.py",  # the API key lookup decides the tenant
}
# Tests, benchmarks, migrations and management commands are allowed by is_allowed() below.
ALLOWED_DIRS = (
    "tests/",
    "benchmarks/",
)


# Outside the kernel, only these functions (file -> function names) may use them. On Postgres the reads
# inside unscoped_no_tenant() run as the system role (BYPASSRLS, SYSTEM_DATABASE_URL), so this list is the
# whole surface that can read across organisations (docs/decisions/025-rls-without-a-bypass.md).
ALLOWED_FUNCTIONS = {
    "accounts/invitations.py": {"invitation_from_token", "invitation_accept"},  # the token decides the tenant
    "licensing/provisioning.py": {"operation_sweep", "outbox_backlog"},  # system sweeps: ids and counts only
    "core/api/idempotency.py": {"purge_expired"},  # system sweep: deletes expired rows of every tenant
    "core/audit.py": {"verify_chain", "chain_rekey"},  # the chain spans every organisation: verify and re-key all
    # Key rotation re-encrypts every organisation's rows.
    "core/keys.py": {"unscoped_manager", "ReencryptBatch.run"},
    # Periodic sweeps: read organisation ids only, then one task per organisation in its tenant.
    "licensing/tasks_directory.py": {"sync_all_directories", "expire_temporary_passwords"},
    # Periodic fan-outs: read organisation (and row) ids only, then one task per organisation re-enters its context.
    "licensing/tasks.py": {"_linked_org_ids", "refresh_renewals", "refresh_all_gdap"},
    # The staff admin needs no escape hatch: accounts/admin_grants.py runs each admin view inside the tenant
    # context of the organisations the staff member's grants cover (docs/decisions/021-staff-access-grants.md).
    # Fraud events and the usage export name Microsoft customers, not tenants: customer id -> organisation
    # id only; each case is then opened inside its organisation's context.
    "security/fraud.py": {"_organizations_by_customer"},
    # Existence check across organisations (a tenant links once); the unique constraint is the real guarantee.
    "licensing/services/onboarding/link.py": {"tenant_link_request"},
    # Reconciliation matches Microsoft's partner-wide files against every customer's invoice lines (staff job),
    # and writes the run, Microsoft's lines and the findings, which span customers, as the system role.
    "billing/services/reconciliation.py": {"reconciliation_run", "_reconcile", "_ours"},
    # Staff editing a targeted announcement see the organisations it names: every organisation's targeting rows.
    "licensing/selectors/directory.py": {"announcement_target_ids"},
    # The billing run skips the organisations already billed for the month: organisation ids only; each
    # one left is billed inside its own tenant context, where the unique constraints decide a race.
    "billing/services/invoices.py": {"_organizations_billed"},
    # The officer's data inventory names the recipients of every organisation's disclosures (recipients and
    # categories only).
    # The disclosure gate reads the opt-outs of an organisation and of every member (row-level security per person
    # shows one person's); the GPC middleware finds the signed-in person's own on every request, outside any
    # transaction, one statement keyed by the person (decision 045).
    # Privacy requests have row-level security by request and by requester (decision 048); the queue metrics and
    # the request records (dates and outcomes, no identifiers) count and list every request.
    "privacy/selectors.py": {
        "data_inventory", "organization_opted_out", "user_opt_out", "request_queue_figures", "request_record_rows",
    },
    # The officer's queue lists every request (the controller's own officer, not a grant holder; decision 048).
    "privacy/views/console.py": {"QueueView.get"},
    # Retention's sweep of authorisation files keeps those whose row exists: every request's documents (ids only).
    "privacy/services/authorizations.py": {"authorization_files_purge_orphans"},
    # An access report includes the person's own audit events that belong to no organisation.
    "privacy/access_report.py": {"subject_account_events"},
    # Password spraying is one source's failures across accounts; row-level security per person shows the
    # application role one person's sign-ins (docs/decisions/032-row-level-security-per-person.md).
    "security/monitoring.py": {"_source_failures"},
    # django-otp's middleware loads the session's device on every signed-in request, outside any transaction:
    # one row, keyed by the device id the session holds and bound to the session's user (decision 035).
    # Memberships, organisations and staff grants have row-level security (decision 044); read before any
    # organisation is in scope: the signed-in person's own memberships with their organisations (the middleware
    # resolving /o/<slug>/, the switcher, the home page; keyed by the person), the staff member's own grants in
    # force (the admin's grant check; keyed by the staff member), and every organisation for periodic sweeps
    # that then work on each inside its own context.
    # Users have row-level security (decision 043); three reads come before anyone is in scope: the user a
    # session names with their own memberships (by that id alone: Django's authentication middleware, on every
    # signed-in request), the user a sign-in awaiting its second factor or a password-reset link names (by that
    # id alone), and the account an address typed in names (sign-in, sign-up, password reset, invitation
    # acceptance, privacy requests by e-mail).
    "accounts/selectors.py": {
        "session_device", "memberships_for_user", "effective_staff_grants", "organizations_across_tenants",
        "signed_in_user", "user_by_session_or_link_id", "user_by_email",
    },
    # Sign-up's slug check: a new slug must be used by no organisation and retired by none (decision 041).
    "accounts/services.py": {"_slug_taken"},
    # The expiry and reminder sweep over every organisation's grants: ids only, then each in its context.
    "accounts/grants.py": {"_grants_due"},
    # Staff asking for access name the organisation by its slug before any grant covers it; superusers
    # oversee every grant (roles and dates, not the customer's data).
    "accounts/admin_staff_grants.py": {"_OrganizationSlugField.clean", "StaffGrantAdmin._grants_scope"},
    # The demo seed finds the demo organisation by its fixed slug before it is in scope.
    "accounts/demo.py": {"seed_accounts_demo"},
    # Retention purges every person's expired sign-ins, login findings, sessions, browsers' opt-outs and closed
    # privacy requests with their documents (decision 048); retention
    # and erasure read every active legal hold (organisations' and people's), and the members an organisation's
    # hold covers, across organisations (ids only).
    "privacy/services/retention.py": {"_untenanted_scope", "held_subjects"},
}


def is_allowed(relative: str) -> bool:
    parts = relative.split("/")
    return (
        relative in ALLOWED_FILES
        or relative.startswith(ALLOWED_DIRS)
        or "migrations" in parts
        or "tests" in parts
        or "/management/commands/" in f"/{relative}"
    )


def project_sources():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIP_DIRS & set(relative.parts):
            continue
        yield relative.as_posix(), path


def unscoped_uses(source: str) -> list[tuple[int, str]]:
    return [(line, name) for line, name, _ in unscoped_uses_in_functions(source)]


def unscoped_uses_in_functions(source: str) -> list[tuple[int, str, str | None]]:
    """(line, name, enclosing top-level function or None for module level / imports)."""
    tree = ast.parse(source)
    spans = [
        (node.lineno, node.end_lineno, node.name)
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    # A method is named "Class.method", so the allow-list can name it exactly.
    spans += [
        (method.lineno, method.end_lineno, f"{node.name}.{method.name}")
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for method in node.body
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    hits = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.alias):
            name = node.asname or node.name.rsplit(".", 1)[-1]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("unscoped_"):
            name = node.value  # getattr(model, "unscoped_objects")
        if name and name.lower().startswith("unscoped_"):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.alias):
                hits.append((line, name, "<import>"))
                continue
            owner = next((fn for start, end, fn in spans if start <= line <= end), None)
            hits.append((line, name, owner))
    return sorted(hits)


def test_scanner_finds_every_spelling():
    source = (
        "from core.tenancy import unscoped_no_tenant\n"
        "ApiKey.unscoped_objects.all()\n"
        "getattr(ApiKey, 'unscoped_objects')\n"
        "def unscoped_helper(): pass\n"
    )
    assert sorted({line for line, _ in unscoped_uses(source)}) == [1, 2, 3, 4]


def test_unscoped_access_only_in_allowed_files():
    offenders, seen_allowed = [], set()
    for relative, path in project_sources():
        try:
            hits = unscoped_uses_in_functions(path.read_text(encoding="utf-8"))
        except SyntaxError as exc:
            offenders.append(f"{relative}:{exc.lineno}: cannot be parsed, so it cannot be checked ({exc.msg})")
            continue
        if not hits:
            continue
        if is_allowed(relative):
            seen_allowed.add(relative)
            continue
        allowed_here = ALLOWED_FUNCTIONS[relative] | {"<import>"} if relative in ALLOWED_FUNCTIONS else set()
        bad = [
            f"{relative}:{line}: {name} (in {owner or 'module level'})"
            for line, name, owner in hits
            if owner not in allowed_here
        ]
        if len(bad) < len(hits):
            seen_allowed.add(relative)
        offenders += bad
    for relative in sorted(seen_allowed):
        print(f"allowed unscoped_* use: {relative}")
    assert not offenders, (
        "unscoped_* escape hatches used outside the allow-list in tests/test_tenancy_guard.py. Use the tenant "
        "context (Model.objects / .for_org(org)) instead, or justify a new allow-list entry:\n" + "\n".join(offenders)
    )
    assert "accounts/authentication.py" in seen_allowed  # the scan really reads the project


@pytest.mark.django_db
def test_tenant_manager_is_empty_outside_a_context_and_scoped_inside():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    key_a = ApiKey.unscoped_objects.create(organization=org_a, name="a", prefix="guarda", secret_hash="x", role="owner")
    key_b = ApiKey.unscoped_objects.create(organization=org_b, name="b", prefix="guardb", secret_hash="x", role="owner")

    assert current_org_ids() is None
    assert ApiKey.objects.count() == 0
    assert not ApiKey.objects.filter(pk=key_a.pk).exists()
    with pytest.raises(ApiKey.DoesNotExist):
        ApiKey.objects.get(pk=key_a.pk)

    with tenant_context(org_a):
        assert list(ApiKey.objects.all()) == [key_a]
        assert not ApiKey.objects.filter(pk=key_b.pk).exists()
        assert ApiKey.objects.for_org(org_b).get() == key_b  # explicit scoping is explicit
    with tenant_context(org_a, org_b):
        assert set(ApiKey.objects.all()) == {key_a, key_b}
    assert ApiKey.objects.count() == 0
    assert current_org_ids() is None
