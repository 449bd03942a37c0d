"""Customer billing pages: overview with spend, invoice list, invoice detail, printable copy and CSV."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from billing.models import Invoice
from billing.pdf import invoice_pdf
from billing.selectors import invoices as selectors
from billing.selectors.pricing import billing_profile
from billing.services import payments as payment_services
from core.audit import Actor
from core.csv_export import csv_response
from core.pagination import ShortPageCountPaginator
from core.tables import search_text

PAGE_SIZE = 25


def seller() -> dict:
    return {"name": settings.BILLING_SELLER_NAME, "address": settings.BILLING_SELLER_ADDRESS,
            "tax_id": settings.BILLING_SELLER_TAX_ID}


class InvoiceMixin(OrganizationMixin):
    permission = Perm.BILLING_VIEW

    def get_invoice(self, pk) -> Invoice:
        invoice = selectors.invoices_for(self.organization).filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice.")
        return invoice


class BillingOverview(OrganizationMixin, TemplateView):
    permission = Perm.BILLING_VIEW
    template_name = "billing/overview.html"

    def get_context_data(self, **kwargs):
        spend = selectors.spend_by_month(self.organization)
        return {**super().get_context_data(**kwargs),
                "spend": [{"currency": c, "points": [(label, float(v)) for label, v in points],
                           "total": sum(v for _, v in points)} for c, points in spend.items()],
                "outstanding": [f"{c} {v}" for c, v in selectors.outstanding(self.organization).items()],
                "recent": selectors.invoices_for(self.organization)[:5],
                "profile": (profile := billing_profile(self.organization)),
                "terms_hint": f"Invoices are due {profile.payment_terms_days} days after their date.",
                "can_manage_cards": self.can(Perm.PAYMENT_METHODS)}


class InvoiceList(OrganizationMixin, TemplateView):
    permission = Perm.BILLING_VIEW
    template_name = "billing/invoices.html"

    def get_context_data(self, **kwargs):
        params = self.request.GET
        # Filters take only their known values, so odd input (a NUL byte, a long string) filters nothing.
        kind = params.get("kind", "") if params.get("kind", "") in Invoice.Kind.values else ""
        status = params.get("status", "") if params.get("status", "") in Invoice.Status.values else ""
        search = search_text(params.get("q", ""))[:100]
        rows = selectors.invoices_for(self.organization, kind=kind, status=status, search=search)
        page = ShortPageCountPaginator(rows, PAGE_SIZE).get_page(params.get("page"))
        return {**super().get_context_data(**kwargs), "page_obj": page, "kind": kind, "status": status,
                "q": search, "kinds": Invoice.Kind.choices, "statuses": Invoice.Status.choices,
                "filtered": bool(kind or status or search)}


class InvoiceDetail(InvoiceMixin, TemplateView):
    template_name = "billing/invoice.html"

    def get_context_data(self, **kwargs):
        invoice = self.get_invoice(kwargs["pk"])
        payable = invoice.kind == Invoice.Kind.INVOICE and invoice.status in payment_services.PAYABLE
        can_pay = payable and self.can(Perm.BILLING_MANAGE)
        return {**super().get_context_data(**kwargs), "invoice": invoice,
                "lines": selectors.invoice_lines(self.organization, invoice), "seller": seller(),
                "credit_notes": selectors.invoices_for(self.organization).filter(credited_invoice=invoice),
                "payments": selectors.payments_for(self.organization, invoice),
                "can_pay": can_pay, "pay_key": uuid.uuid4().hex,
                "methods": selectors.payment_methods(self.organization) if can_pay else [],
                "can_add_card": self.can(Perm.PAYMENT_METHODS)}


class InvoicePrint(InvoiceDetail):
    """A standalone page for the browser's print (or save as PDF): no navigation, print stylesheet."""

    template_name = "billing/invoice_print.html"


CSV_HEADER = ["invoice", "issued", "line", "kind", "description", "microsoft_subscription_id", "period_start",
              "period_end", "quantity", "unit_price", "amount", "currency", "explanation"]


class InvoicePdf(InvoiceMixin, View):
    def get(self, request, org_slug, pk):
        invoice = self.get_invoice(pk)
        body = invoice_pdf(invoice=invoice, lines=list(selectors.invoice_lines(self.organization, invoice)),
                           seller=seller())
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


class InvoiceCsv(InvoiceMixin, View):
    def get(self, request, org_slug, pk):
        invoice = self.get_invoice(pk)
        # Read now, inside the tenant context: the response streams after the view returns.
        lines = list(selectors.invoice_lines(self.organization, invoice))

        def rows():
            yield CSV_HEADER
            for line in lines:
                yield [invoice.number, invoice.issued_at.date().isoformat(), line.position, line.kind,
                       line.description, line.ms_subscription_id,
                       line.period_start.isoformat() if line.period_start else "",
                       line.period_end.isoformat() if line.period_end else "", line.quantity, line.unit_price,
                       line.amount, invoice.currency, line.explanation]

        return csv_response(f"{invoice.number}.csv", rows())


class ReconciliationExport(OrganizationMixin, View):
    """For the customer's finance team: every invoice line with its Microsoft subscription, period and
    seats, next to the subscription's seat count today, so they can audit what we billed."""

    permission = Perm.BILLING_VIEW

    def get(self, request, org_slug):
        lines = list(selectors.reconciliation_rows(self.organization))

        def rows():
            yield ["invoice", "issued", "status", "line", "kind", "product", "microsoft_subscription_id",
                   "period_start", "period_end", "quantity_billed", "unit_price", "amount", "currency",
                   "seats_today", "subscription_status"]
            for line in lines:
                sub = line.subscription
                yield [line.invoice.number, line.invoice.issued_at.date().isoformat(), line.invoice.status,
                       line.position, line.kind, line.description, line.ms_subscription_id,
                       line.period_start.isoformat() if line.period_start else "",
                       line.period_end.isoformat() if line.period_end else "", line.quantity, line.unit_price,
                       line.amount, line.invoice.currency, sub.quantity if sub else "", sub.status if sub else ""]

        return csv_response(f"{self.organization.slug}-billing-reconciliation.csv", rows())


# --- payment methods and paying ------------------------------------------------------------------------
ADD_CARD_SALT = "billing.add-card"


def _error(exc: ValidationError) -> str:
    return " ".join(exc.messages)


class PaymentMethods(OrganizationMixin, TemplateView):
    permission = Perm.PAYMENT_METHODS
    template_name = "billing/payment_methods.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "methods": selectors.payment_methods(self.organization),
                "gateway_ready": settings.BILLING_TEST_GATEWAY_ENABLED}


class AddCard(OrganizationMixin, View):
    """Send the browser to the processor's hosted fields, with a signed state to come back with."""

    permission = Perm.PAYMENT_METHODS

    def post(self, request, org_slug):
        if not settings.BILLING_TEST_GATEWAY_ENABLED:
            raise Http404("No card processor is configured.")
        state = signing.dumps({"org": str(self.organization.pk), "user": str(request.user.pk)}, salt=ADD_CARD_SALT)
        back = reverse("billing:card_added", kwargs={"org_slug": org_slug})
        return redirect(f"{reverse('test_gateway:hosted_fields')}?{urlencode({'return_url': back, 'state': state})}")


class CardAdded(OrganizationMixin, View):
    """Where the processor sends the browser back, with a token and our state."""

    permission = Perm.PAYMENT_METHODS

    def get(self, request, org_slug):
        target = redirect("billing:payment_methods", org_slug=org_slug)
        try:
            state = signing.loads(request.GET.get("state", ""), salt=ADD_CARD_SALT, max_age=1800)
        except signing.BadSignature:
            messages.error(request, "That card could not be added: the request expired. Please try again.")
            return target
        if state != {"org": str(self.organization.pk), "user": str(request.user.pk)}:
            messages.error(request, "That card could not be added: it was started by someone else.")
            return target
        try:
            method = payment_services.payment_method_add(organization=self.organization,
                                                         actor=Actor.user(request.user), user=request.user,
                                                         token=request.GET.get("token", ""))
        except ValidationError as exc:
            messages.error(request, f"That card could not be added: {_error(exc)}")
        else:
            messages.success(request, f"{method} saved.")
        return target


class RemoveCard(OrganizationMixin, View):
    permission = Perm.PAYMENT_METHODS

    def post(self, request, org_slug, pk):
        method = selectors.payment_methods(self.organization).filter(pk=pk).first()
        if method is None:
            raise Http404("No such card.")
        payment_services.payment_method_remove(organization=self.organization, actor=Actor.user(request.user),
                                               method=method)
        messages.success(request, f"{method} removed.")
        return redirect("billing:payment_methods", org_slug=org_slug)


class PayInvoice(InvoiceMixin, View):
    permission = Perm.BILLING_MANAGE

    def post(self, request, org_slug, pk):
        invoice = self.get_invoice(pk)
        target = redirect("billing:invoice", org_slug=org_slug, pk=invoice.pk)
        chosen = request.POST.get("method", "")
        method = selectors.payment_methods(self.organization).filter(pk=chosen).first() if _is_uuid(chosen) else None
        if method is None:
            messages.error(request, "Choose a saved card to pay with.")
            return target
        try:
            payment = payment_services.invoice_pay_by_card(
                organization=self.organization, actor=Actor.user(request.user), user=request.user, invoice=invoice,
                method=method, idempotency_key=request.POST.get("idempotency_key", "")[:128],
                amount=request.POST.get("amount", "").strip()[:32] or None)
        except ValidationError as exc:
            messages.error(request, f"The payment did not go through: {_error(exc)}")
        else:
            messages.success(request, f"Paid {payment.currency} {payment.amount} with {method}. Thank you.")
        return target


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
