"""A living demo organisation, built through the real services and outbox against the running emulator.

Only for ``seed_demo`` (and tests): it also drives the emulator's own control API (approving
the GDAP request as the customer would, lifting sandbox limits, moving its clock), which
exists only in the emulator. Operations run inline through the executor, so the result does
not depend on a worker being up.
"""

from __future__ import annotations

import requests
from django.conf import settings
from django.utils import timezone

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from core.audit import Actor
from core.tenancy import tenant_context
from licensing.microsoft.client import reset_default_client
from licensing.models import GdapRelationship, Price, ProvisioningOperation, Subscription
from licensing.provisioning import operation_execute
from licensing.services import catalog as catalog_services
from licensing.services import onboarding as onboarding_services
from licensing.services import purchases as purchase_services
from licensing.services import subscriptions as subscription_services

# The emulator's seeded demo customer (msemulator/seed.py), with users and an earlier purchase.
DEMO_TENANT_ID = "3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b"
DEMO_COMPANY = "Fabrikam Inc"
BUSINESS_PREMIUM = "CFQ7TTC0LCHC:0001"
BUSINESS_BASIC = "CFQ7TTC0LH18:0001"
EXCHANGE_PLAN_1 = "CFQ7TTC0LH16:0001"
TEAMS_ESSENTIALS = "CFQ7TTC0RM8K:0001"


class EmulatorControl:
    """The emulator's ``/_emulator`` control API. Not a Microsoft API."""

    def __init__(self, base_url: str | None = None, ca_bundle: str | None = None):
        self.base_url = (base_url or settings.MSEMULATOR_URL).rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle or settings.MS_CA_BUNDLE

    def post(self, path: str, payload: dict | None = None) -> dict:
        response = self.session.post(f"{self.base_url}/_emulator{path}", json=payload or {}, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else {}

    def patch(self, path: str, payload: dict) -> dict:
        response = self.session.patch(f"{self.base_url}/_emulator{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()


def run_pending_operations(organization, *, rounds: int = 20) -> None:
    """Carry out this organisation's outbox inline, as a worker would (polls included)."""
    for _ in range(rounds):
        with tenant_context(organization):
            pending = list(
                ProvisioningOperation.objects.for_org(organization)
                .filter(status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING])
                .order_by("created_at")
                .values_list("pk", flat=True)
            )
        if not pending:
            return
        for pk in pending:
            operation_execute(operation_id=pk, org_id=organization.pk)


def _in_tenant(func, **kwargs):
    with tenant_context(kwargs.get("organization") or kwargs["relationship"].organization_id):
        return func(**kwargs)


def link_demo_tenant(*, organization, actor, control: EmulatorControl, tenant_id: str = DEMO_TENANT_ID) -> None:
    """Link through a real GDAP request, approved in the emulator as the customer's admin would."""
    user = actor if getattr(actor, "pk", None) else None
    audit_actor = Actor.user(user) if user else Actor.system("demo")
    _in_tenant(onboarding_services.tenant_link_request, organization=organization, actor=audit_actor,
               user=user, tenant_id=tenant_id, company_name=DEMO_COMPANY)
    run_pending_operations(organization)
    with tenant_context(organization):
        relationship = GdapRelationship.objects.for_org(organization).select_related("microsoft_tenant").latest(
            "created_at"
        )
    control.post(f"/gdap/{relationship.ms_relationship_id}/approve")
    _in_tenant(onboarding_services.gdap_refresh, relationship=relationship)
    run_pending_operations(organization)


def accept_demo_agreement(*, organization, user, ip_address: str = "127.0.0.1") -> None:
    audit_actor = Actor.user(user) if user else Actor.system("demo")
    _in_tenant(onboarding_services.agreement_accept, organization=organization, actor=audit_actor,
               user=user, first_name="Jane", last_name="Doe", email="jane.doe@example.com", ip_address=ip_address,
               user_agent="seed_demo")
    run_pending_operations(organization)


def buy(*, organization, user, catalog_id: str, quantity: int, term: str = "P1Y", cycle: str = "monthly",
        auto_renew: bool = True) -> Subscription:
    product_id, sku_id = catalog_id.split(":")
    price = Price.objects.select_related("availability__sku").get(
        availability__sku__product__product_id=product_id, availability__sku__sku_id=sku_id,
        availability__is_active=True, term_duration=term, billing_cycle=cycle,
    )
    audit_actor = Actor.user(user) if user else Actor.system("demo")
    order = _in_tenant(purchase_services.order_place, organization=organization, actor=audit_actor,
                       user=user, role=Role.OWNER, price=price, quantity=quantity, auto_renew=auto_renew)
    run_pending_operations(organization)
    with tenant_context(organization):
        return Subscription.objects.for_org(organization).filter(order=order).latest("created_at")


def seed_licensing_demo(*, organization, actor, emulator_url: str | None = None, ca_bundle: str | None = None) -> dict:
    """Link the demo tenant, accept the MCA and buy subscriptions in different states.

    - Business Premium bought months ago (the emulator's own seed), imported by reconcile;
    - Business Basic bought just now: inside its 7-day cancellation window;
    - Exchange Online (Plan 1), monthly term: renews within the month;
    - Teams Essentials: suspended.
    """
    control = EmulatorControl(emulator_url, ca_bundle)
    if not settings.MS_ADMIN_AGENT_REFRESH_TOKEN:
        # GDAP requests are App+User calls: sign the partner's Admin Agent in, as an operator would once.
        settings.MS_ADMIN_AGENT_REFRESH_TOKEN = control.post("/refresh-tokens", {"mfa": True})["refresh_token"]
        reset_default_client()
    # The integration sandbox allows 5 subscriptions per customer; a production partner has no such limit.
    control.patch("/settings", {"sandboxLimits": False})
    catalog_services.catalog_sync(country=settings.LICENSING_CATALOG_COUNTRY)
    with tenant_context(organization):
        tenant = MicrosoftTenant.objects.for_org(organization).first()
    if tenant is None or tenant.relationship_status != MicrosoftTenant.RelationshipStatus.ACTIVE:
        link_demo_tenant(organization=organization, actor=actor, control=control)
    accept_demo_agreement(organization=organization, user=actor)
    # The seed carries its purchases out inline, so Microsoft provisions them at once here; the
    # emulator's asynchronous default comes back afterwards for orders placed in the running demo.
    delays = control.patch("/settings", {})
    control.patch("/settings", {"orderProvisioningSeconds": 0, "orderProvisioningTailSeconds": 0})
    try:
        in_window = buy(organization=organization, user=actor, catalog_id=BUSINESS_BASIC, quantity=15)
        renewing = buy(organization=organization, user=actor, catalog_id=EXCHANGE_PLAN_1, quantity=8, term="P1M")
        suspended = buy(organization=organization, user=actor, catalog_id=TEAMS_ESSENTIALS, quantity=5)
    finally:
        control.patch("/settings", {key: delays[key] for key in ("orderProvisioningSeconds",
                                                                 "orderProvisioningTailSeconds")})
    with tenant_context(organization):
        subscription_services.subscription_suspend(
            subscription=suspended, actor=Actor.system("demo"), reason="Demo: paused while the team is on leave."
        )
    run_pending_operations(organization)
    with tenant_context(organization):
        counts = subscription_services.subscription_reconcile(organization=organization)
        total = Subscription.objects.for_org(organization).count()
    return {"subscriptions": total, "imported": counts["imported"], "in_window": str(in_window.pk),
            "renewing": str(renewing.pk), "suspended": str(suspended.pk), "at": timezone.now().isoformat()}
