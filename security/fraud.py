"""Azure fraud: cases from Partner Center's fraud events and from our usage anomalies, and the response.

Every signal opens (at most once: a unique key per signal) a ``FraudCase`` for the customer and the
Azure subscription, with its evidence and a score. The policy turns the score into a response:

- below ``SECURITY_FRAUD_BLOCK_SCORE``: alert only;
- from it: new provisioning for the customer is held (``licensing.holds``: orders, approvals and
  seat increases are refused with the reason while the case is open);
- from ``SECURITY_FRAUD_SUSPEND_SCORE``: the Azure plan that holds the Azure subscription is
  suspended through Partner Center (the provisioning outbox, over HTTP), and provisioning is held.

A security responder can suspend any open case from the admin. Customer owners and security staff
are e-mailed when a case opens. Resolving a case as fraud or as not fraud releases the hold and, for
Partner Center events, sets the events to Resolved with the documented body
(``{"EventIds": [...], "EventStatus": "Resolved", "ResolvedReason": "Fraud" | "Ignore"}``), through
an outbox operation so it is retried with one stable request id. Every step is audited.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import PARTNER_CUSTOMER_ID_INDEX, Membership, MicrosoftTenant, Organization
from accounts.roles import Role
from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.tenancy import tenant_context, unscoped_no_tenant
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import MicrosoftError
from licensing.models import ProvisioningOperation, Subscription
from licensing.provisioning import operation_enqueue, register_operation
from licensing.services.subscriptions import subscription_suspend

from . import usage_anomalies
from .models import AzureUsageDay, FraudCase

logger = logging.getLogger(__name__)

AZURE_PLAN_PRODUCT = "DZH318Z0BPS6"  # Microsoft's product id of the Azure plan
CRYPTO_MINING = "NetworkConnectionsToCryptoMiningPools"
SEVERITY_SCORES = {"high": 80, "medium": 60, "low": 30}
ACTOR = "fraud-response"
HISTORY_DAYS = 30
UPDATE_OPERATION = "security.fraud_events_update"


def partner_center_score(event) -> int:
    """Crypto-mining connections are the one event Microsoft itself treats as fraud: suspend."""
    if event.event_type == CRYPTO_MINING:
        return 95
    return SEVERITY_SCORES.get((event.severity or "").lower(), 50)


def policy_action(score: int) -> str:
    if score >= settings.SECURITY_FRAUD_SUSPEND_SCORE:
        return FraudCase.Action.SUSPEND
    if score >= settings.SECURITY_FRAUD_BLOCK_SCORE:
        return FraudCase.Action.BLOCK_PROVISIONING
    return FraudCase.Action.ALERT


def provisioning_hold(organization) -> str:
    """``licensing.holds`` check: the reason new provisioning is held, or ""."""
    with tenant_context(organization):
        held = FraudCase.objects.filter(status=FraudCase.Status.OPEN, blocks_provisioning=True).exists()
    if not held:
        return ""
    cases = reverse("security:fraud_cases", kwargs={"org_slug": organization.slug})
    return ("New purchases and seat increases are on hold while our security team reviews unusual Azure activity "
            f"on your account (see Security, Azure fraud cases: {cases}). Contact support to have the review "
            "completed.")


# -- opening a case ---------------------------------------------------------------------------------
def _azure_plan_for(organization, azure_subscription_id: str) -> Subscription | None:
    """The portal's Azure plan subscription that holds this Azure subscription (asks Microsoft)."""
    tenant = MicrosoftTenant.objects.for_org(organization).first()
    if tenant is None or not tenant.partner_customer_id:
        return None
    plans = Subscription.objects.for_org(organization).filter(
        catalog_item_id__startswith=AZURE_PLAN_PRODUCT, ms_subscription_id__isnull=False)
    client = default_client().partner_center
    for plan in plans:
        entitlements = client.list_azure_entitlements(customer_id=tenant.partner_customer_id,
                                                      subscription_id=plan.ms_subscription_id)
        if azure_subscription_id in entitlements:
            return plan
    return None


@transaction.atomic
def fraud_case_open(*, organization, source: str, signal: str, dedupe_key: str, azure_subscription_id: str,
                    score: int, evidence: dict, ms_event_ids=()) -> FraudCase | None:
    """Open a case for a new signal and carry out the policy's response; None if it was already open."""
    if FraudCase.objects.for_org(organization).filter(dedupe_key=dedupe_key).exists():
        return None
    action = policy_action(score)
    case = FraudCase(organization=organization, source=source, signal=signal[:64], dedupe_key=dedupe_key[:200],
                     azure_subscription_id=azure_subscription_id[:64], score=score, evidence=evidence,
                     ms_event_ids=list(ms_event_ids), action=action,
                     blocks_provisioning=action != FraudCase.Action.ALERT)
    if azure_subscription_id:
        try:
            case.subscription = _azure_plan_for(organization, azure_subscription_id)
        except MicrosoftError as exc:  # the case opens all the same; a responder can retry the suspension
            case.evidence = {**evidence, "plan_lookup_failed": str(exc)[:200]}
    case.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError:
        return None  # a concurrent poll opened it first
    audit_record(actor=Actor.system(ACTOR), action="security.fraud_case_opened", organization=organization,
                 target=case, metadata={"signal": case.signal, "score": score, "action": action,
                                        "azure_subscription_id": case.azure_subscription_id})
    reason = "Automatic response to a high-risk Azure fraud signal"
    if action == FraudCase.Action.SUSPEND and not _suspend(case, Actor.system(ACTOR), reason):
        case.action = FraudCase.Action.BLOCK_PROVISIONING
        case.evidence = {**case.evidence, "suspension": "no Azure plan in the portal holds this subscription"}
        case.save(update_fields=["action", "evidence", "updated_at"])
    _notify(case)
    return case


def _suspend(case: FraudCase, actor: Actor, reason: str) -> ProvisioningOperation | None:
    plan = case.subscription
    if plan is None or plan.status != Subscription.Status.ACTIVE:
        return None
    operation = subscription_suspend(subscription=plan, actor=actor, reason=f"{reason} (fraud case {case.pk})",
                                     override_reason=f"Azure fraud case {case.pk}")
    case.suspension_requested_at = timezone.now()
    case.blocks_provisioning = True
    case.action = FraudCase.Action.SUSPEND
    case.save(update_fields=["suspension_requested_at", "blocks_provisioning", "action", "updated_at"])
    audit_record(actor=actor, action="security.fraud_suspension_requested", organization=case.organization_id,
                 target=case, metadata={"subscription": str(plan.pk), "operation": str(operation.pk)})
    return operation


@transaction.atomic
def fraud_case_suspend(*, case: FraudCase, user) -> ProvisioningOperation:
    """A security responder suspends the case's Azure plan now, whatever the score."""
    case = FraudCase.objects.for_org(case.organization_id).select_for_update().get(pk=case.pk)
    if case.status != FraudCase.Status.OPEN:
        raise ValidationError("Only an open case can lead to a suspension.", code="case_closed")
    operation = _suspend(case, Actor.staff(user), "Suspended by a security responder")
    if operation is None:
        raise ValidationError("No active Azure plan in the portal holds this Azure subscription.",
                              code="nothing_to_suspend")
    return operation


@transaction.atomic
def fraud_case_resolve(*, case: FraudCase, user, fraud: bool, note: str = "") -> FraudCase:
    """Close the case, release the provisioning hold, and tell Microsoft (for its own events)."""
    case = FraudCase.objects.for_org(case.organization_id).select_for_update().get(pk=case.pk)
    if case.status != FraudCase.Status.OPEN:
        raise ValidationError("This case is already resolved.", code="case_closed")
    case.status = FraudCase.Status.RESOLVED_FRAUD if fraud else FraudCase.Status.RESOLVED_IGNORE
    case.blocks_provisioning = False
    case.resolved_at, case.resolved_by, case.resolution_note = timezone.now(), user, (note or "").strip()[:500]
    case.save(update_fields=["status", "blocks_provisioning", "resolved_at", "resolved_by", "resolution_note",
                             "updated_at"])
    operation = None
    if case.source == FraudCase.Source.PARTNER_CENTER and case.ms_event_ids:
        operation = operation_enqueue(
            organization=case.organization, kind=UPDATE_OPERATION, actor=Actor.staff(user), target=case,
            payload={"azure_subscription_id": case.azure_subscription_id, "event_ids": case.ms_event_ids,
                     "status": "Resolved", "resolved_reason": "Fraud" if fraud else "Ignore"},
            idempotency_key=f"fraud-resolve:{case.pk}",
        )
    audit_record(actor=Actor.staff(user), action="security.fraud_case_resolved", organization=case.organization_id,
                 target=case, metadata={"outcome": case.status, "operation": str(operation.pk) if operation else ""})
    return case


@register_operation(UPDATE_OPERATION, max_attempts=6)
def _run_fraud_events_update(operation: ProvisioningOperation) -> dict:
    payload = operation.payload
    updated = default_client().partner_center.update_fraud_events(
        subscription_id=payload["azure_subscription_id"], event_ids=list(payload["event_ids"]),
        status=payload["status"], resolved_reason=payload.get("resolved_reason"),
        request_id=str(operation.ms_request_id),
    )
    return {"updated": [e.event_id for e in updated], "status": payload["status"]}


def _notify(case: FraudCase) -> None:
    # Loaded as users: the e-mail is an encrypted field, decrypted by the model, never by values_list().
    owners = [m.user.email for m in Membership.objects.filter(organization_id=case.organization_id,
                                                                role=Role.OWNER, user__is_active=True)
              .select_related("user")]
    site = settings.SITE_URL.rstrip("/")
    context = {"case": case, "signal": case.signal.replace("_", " "), "action": case.get_action_display(),
               "admin_url": site + reverse("admin:security_fraudcase_change", args=[case.pk]),
               "case_url": site + reverse("security:fraud_case", kwargs={"org_slug": case.organization.slug,
                                                                          "case_id": case.pk})}
    customer = render_to_string("security/email/fraud_customer.txt", context)
    staff = render_to_string("security/email/fraud_staff.txt", context)
    staff_to = list(settings.SECURITY_ALERT_EMAILS)

    def send():
        if owners:
            send_mail(subject="Unusual activity on your Azure subscription", message=customer, from_email=None,
                      recipient_list=owners)
        if staff_to:
            send_mail(subject=f"Azure fraud case: {context['signal']} ({case.get_action_display()})",
                      message=staff, from_email=None, recipient_list=staff_to)

    transaction.on_commit(send)


# -- the two sources ----------------------------------------------------------------------------------
def _organizations_by_customer(customer_ids) -> dict[str, str]:
    """Microsoft customer id -> organisation id, across organisations: the event names the customer,
    not the tenant context. Ids only; every case is then opened inside its organisation's context."""
    if not customer_ids:
        return {}
    with unscoped_no_tenant():
        by_index = {blind_index(PARTNER_CUSTOMER_ID_INDEX, str(customer)): customer for customer in customer_ids}
        rows = MicrosoftTenant.unscoped_objects.filter(partner_customer_id_index__in=list(by_index)).values_list(
            "partner_customer_id_index", "organization_id")
        return {by_index[index]: str(org) for index, org in rows}


def fraud_events_poll() -> int:
    """Read Partner Center's open fraud events for every customer and open a case for each new one."""
    client = default_client().partner_center
    events = [e for status in ("Active", "Investigating") for e in client.list_fraud_events(status=status)]
    organizations = _organizations_by_customer({e.customer_tenant_id for e in events})
    opened = 0
    for event in events:
        org_id = organizations.get(event.customer_tenant_id)
        if org_id is None:
            logger.warning("fraud event %s names a customer the portal does not know", event.event_id)
            continue
        with tenant_context(org_id):  # the organisation has row-level security too: read inside its context
            organization = Organization.objects.get(pk=org_id)
            case = fraud_case_open(
                organization=organization, source=FraudCase.Source.PARTNER_CENTER, signal=event.event_type,
                dedupe_key=f"pc:{event.event_id}", azure_subscription_id=event.subscription_id,
                score=partner_center_score(event), ms_event_ids=[event.event_id],
                evidence={k: event.raw.get(k) for k in (
                    "eventId", "eventType", "eventStatus", "severity", "confidenceLevel", "hitCount",
                    "firstOccurrence", "lastOccurrence", "serviceName", "resourceName", "description")
                    if k in event.raw},
            )
        opened += case is not None
    return opened


def azure_usage_scan(*, rows) -> int:
    """Fold usage export rows into daily summaries, keep them, and open a case for each anomaly."""
    summaries = usage_anomalies.summarise_rows(rows)
    organizations = _organizations_by_customer({customer for customer, _, _ in summaries})
    opened = 0
    for (customer, _, _), summary in sorted(summaries.items(), key=lambda item: item[0][2]):
        org_id = organizations.get(customer)
        if org_id is None:
            continue
        with tenant_context(org_id):
            organization = Organization.objects.get(pk=org_id)
            opened += _usage_day_record(organization, summary)
    return opened


def _usage_day_record(organization, summary) -> int:
    AzureUsageDay.objects.update_or_create(
        organization=organization, azure_subscription_id=summary.subscription_id, day=summary.day,
        defaults={"spend": summary.spend, "currency": summary.currency, "regions": sorted(summary.regions),
                  "vm_families": sorted(summary.vm_families)},
    )
    since = summary.day - timedelta(days=HISTORY_DAYS)
    history = [
        usage_anomalies.DaySummary(summary.customer_id, d.azure_subscription_id, d.day, d.spend, d.currency,
                                   set(d.regions), set(d.vm_families))
        for d in AzureUsageDay.objects.for_org(organization).filter(
            azure_subscription_id=summary.subscription_id, day__gte=since, day__lt=summary.day)
    ]
    opened = 0
    for anomaly in usage_anomalies.anomalies(history, summary):
        case = fraud_case_open(
            organization=organization, source=FraudCase.Source.USAGE_ANOMALY, signal=anomaly.signal,
            dedupe_key=f"usage:{summary.subscription_id}:{summary.day.isoformat()}:{anomaly.signal}",
            azure_subscription_id=summary.subscription_id, score=anomaly.score, evidence=anomaly.evidence,
        )
        opened += case is not None
    return opened


def azure_usage_export_scan() -> int:
    """The periodic scan: request the unbilled usage export, wait for it, scan its rows."""
    graph = default_client().graph
    manifest = graph.wait_for_export(operation_url=graph.request_unbilled_usage_export(billing_period="current"))
    return azure_usage_scan(rows=graph.iter_export_rows(manifest))

