"""Billing tasks: thin, idempotent, run by Celery beat (portal/settings.py CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import organizations_across_tenants
from core.audit import Actor

from .services import azure as azure_services
from .services import invoices as invoice_services
from .services import reconciliation as reconciliation_services


@shared_task(name="billing.tasks.billing_run_all", acks_late=True, reject_on_worker_lost=True)
def billing_run_all() -> dict:
    """Bill last month for every organisation (a no-op once billed), mark overdue invoices, send reminders."""
    now = timezone.now()
    month = invoice_services.previous_month(now)
    result = invoice_services.billing_run(month=month, now=now,
                                          azure_usage=azure_services.usage_export_for_last_month(month))
    overdue = reminders = 0
    for organization in organizations_across_tenants(active_only=True):
        overdue += invoice_services.invoices_mark_overdue(organization=organization, now=now)
        reminders += invoice_services.invoices_send_reminders(organization=organization, now=now)
    return {"month": result.month.isoformat(), "organizations": result.organizations,
            "documents": len(result.documents), "overdue": overdue, "reminders": reminders}


@shared_task(name="billing.tasks.send_invoice_email", acks_late=True, reject_on_worker_lost=True)
def send_invoice_email(*, invoice_id: str, organization_id: str) -> bool:
    organization = Organization.objects.get(pk=organization_id)
    return invoice_services.invoice_email(organization=organization, invoice_id=invoice_id)


@shared_task(name="billing.tasks.reconcile_unbilled", acks_late=True, reject_on_worker_lost=True)
def reconcile_unbilled() -> dict:
    """Daily: import Microsoft's unbilled line items and match them with our invoices (a new run each time)."""
    run = reconciliation_services.reconciliation_run(actor=Actor.system("reconciliation"), source="unbilled")
    return {"run": str(run.pk), "items": run.items, "at_risk": run.summary.get("total_at_risk")}
