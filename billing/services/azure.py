"""Azure consumption in the billing run: the month's usage export, read once, and each organisation's lines.

The run (services/invoices.py) reads an organisation's meters with :func:`azure_meters_to_bill` before
its transaction, and turns them into charges with :func:`azure_pending_charges` next to its
subscription charges. The export is partner-wide: :class:`UsageExport` fetches it from Partner Center
(Graph's billing export, through ``licensing.microsoft``) the first time an organisation that still
needs billing asks, so an hourly run that finds everyone billed never calls Microsoft. Arithmetic and
wording are in ``billing/azure.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from accounts.models import MicrosoftTenant
from billing import azure
from billing.charges import Charge
from billing.models import Invoice, InvoiceLine
from billing.selectors.pricing import billing_profile, exchange_rate, margin_rule_for
from core.tenancy import tenant_context
from licensing import nce
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import MicrosoftError

NO_DATA = "5000"  # the export's "No data available": no Azure usage anywhere that month


class UsageExport:
    """A month's Azure usage per Microsoft customer, loaded on first use."""

    def __init__(self, month: date, rows: Iterable[dict] | Callable[[], Iterable[dict]]):
        self.month = month.replace(day=1)
        self._rows = rows
        self._by_customer: dict[str, list[azure.MeterUsage]] | None = None

    def for_customer(self, customer_id: str) -> list[azure.MeterUsage]:
        if self._by_customer is None:
            rows = self._rows() if callable(self._rows) else self._rows
            self._by_customer = azure.fold_usage(rows, month=self.month)
        return self._by_customer.get(customer_id, [])


def _last_month_rows() -> list[dict]:
    graph = default_client().graph
    try:
        manifest = graph.wait_for_export(operation_url=graph.request_unbilled_usage_export(billing_period="last"))
    except MicrosoftError as exc:
        if exc.code == NO_DATA:
            return []
        raise  # no guess: the run fails and the next one (hourly) tries again before billing anyone
    return list(graph.iter_export_rows(manifest))


def usage_export_for_last_month(month: date) -> UsageExport:
    """The usage of the month that just ended, as Partner Center's unbilled export for "last" period gives it."""
    return UsageExport(month, _last_month_rows)


def azure_meters_to_bill(*, organizations: list, usage: UsageExport | None, period: date) -> dict:
    """Organisation id -> its meters in the export, read before the run's transaction opens: the first
    organisation that needs them waits for Microsoft's export, and no transaction stays open meanwhile.
    Nothing (and no call to Microsoft) for organisations whose month is billed already."""
    if usage is None or not organizations:
        return {}
    ids = [organization.pk for organization in organizations]
    with tenant_context(*organizations):
        billed = set(Invoice.objects.filter(organization_id__in=ids, run_period=period).order_by()
                     .values_list("organization_id", flat=True))
        customers = {tenant.organization_id: tenant.partner_customer_id
                     for tenant in MicrosoftTenant.objects.filter(organization_id__in=ids)
                     if tenant.organization_id not in billed and tenant.partner_customer_id}
    return {org_id: meters for org_id, customer in customers.items() if (meters := usage.for_customer(customer))}


def azure_pending_charges(*, organization, meters: list[azure.MeterUsage], period: date) -> list[tuple[str, Charge]]:
    """(currency, charge) for each of ``meters`` (``period``'s month) that no document billed yet. Call inside
    the organisation's tenant context."""
    if not meters:
        return []
    billed = set(InvoiceLine.objects.for_org(organization).filter(
        Q(charge_key__startswith="azure:"), kind=InvoiceLine.Kind.CONSUMPTION).values_list("charge_key", flat=True))
    profile = billing_profile(organization)
    rule = margin_rule_for(organization=organization, tier=profile.tier, family=azure.AZURE_FAMILY, day=period)
    margin = rule.margin_percent if rule else Decimal(str(settings.LICENSING_DEFAULT_MARGIN_PERCENT))
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    end = nce.add_months(start, 1)
    out = []
    for meter in meters:
        rate = exchange_rate(base=meter.currency, quote=profile.currency, day=period)
        # No rate: billed in Microsoft's currency on a document of its own, never at a guessed rate.
        currency = profile.currency if rate is not None else meter.currency
        charge = azure.consumption_charge(meter, period_start=start, period_end=end, margin_percent=margin,
                                          margin_source=str(rule) if rule else "default margin",
                                          rate=rate if rate is not None else Decimal(1), currency=currency)
        if charge.key not in billed:
            out.append((currency, charge))
    return out
