"""Staff admin for billing: margin rules, exchange rates and billing profiles.

Price lists are shared rows, edited here; every save and delete goes through a service, which
validates and audits it with the staff member as actor. Billing profiles, invoices and payments are
tenant rows shown only for organisations whose grant covers billing (accounts.admin_grants): a
support reader views them, a billing operator also changes them; each read and change is audited
with the grant.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from accounts.admin_grants import GrantScopedAdmin, grants_for_area
from core.admin import ReadOnlyAdmin
from core.audit import Actor
from core.tenancy import tenant_context
from licensing.admin import _with_reason

from .models import (
    BillingProfile,
    ExchangeRate,
    Invoice,
    MarginRule,
    Payment,
    ReconciliationFinding,
    ReconciliationRun,
    TaxRate,
)
from .services import payments as payment_services
from .services import pricing as pricing_services
from .services import reconciliation as reconciliation_services


class BankTransferForm(forms.Form):
    amount = forms.CharField(max_length=32, required=False,
                             help_text="What the bank received, e.g. 120.50; empty for the whole balance.")
    reference = forms.CharField(max_length=100, help_text="The bank's reference for the transfer.")


class RefundForm(forms.Form):
    amount = forms.CharField(max_length=32, required=False,
                             help_text="How much to give back, e.g. 20.00; empty for all that is left.")
    reason = forms.CharField(max_length=300, help_text="Why; the customer sees it.")
    bank_reference = forms.CharField(max_length=100, required=False,
                                     help_text="For a bank transfer: the bank's reference of the money sent back. "
                                               "A card is refunded through the gateway.")


@admin.register(MarginRule)
class MarginRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "tier", "product_family", "margin_percent", "effective_from",
                    "effective_to"]
    list_filter = ["tier", "product_family"]
    search_fields = ["product_family", "note"]
    autocomplete_fields = []
    raw_id_fields = ["customer"]
    fields = ["customer", "tier", "product_family", "margin_percent", "effective_from", "effective_to", "note"]

    def save_model(self, request, obj, form, change):
        pricing_services.margin_rule_save(actor=Actor.staff(request.user), rule=obj)

    def delete_model(self, request, obj):
        pricing_services.margin_rule_delete(actor=Actor.staff(request.user), rule=obj)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            self.delete_model(request, rule)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["base", "quote", "rate", "effective_from"]
    list_filter = ["base", "quote"]
    fields = ["base", "quote", "rate", "effective_from"]

    def save_model(self, request, obj, form, change):
        pricing_services.exchange_rate_save(actor=Actor.staff(request.user), rate=obj)

    def has_delete_permission(self, request, obj=None):
        return False  # a rate once used to price something stays, for the record


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    list_display = ["country", "region", "name", "rate_percent", "effective_from", "effective_to"]
    list_filter = ["country"]

    def save_model(self, request, obj, form, change):
        pricing_services.tax_rate_save(actor=Actor.staff(request.user), rate=obj)

    def has_delete_permission(self, request, obj=None):
        return False  # issued invoices name the rate; end it with effective_to instead


@admin.register(BillingProfile)
class BillingProfileAdmin(GrantScopedAdmin, admin.ModelAdmin):
    """Staff set a customer's tier, currency and payment terms; contacts are the customer's (never shown)."""

    grant_area = "billing"
    list_select_related = ["organization"]

    list_display = ["organization", "currency", "tier", "payment_terms_days", "tax_exempt"]
    list_filter = ["tier", "currency", "tax_exempt"]
    fields = ["organization", "currency", "tier", "payment_terms_days", "tax_exempt"]
    readonly_fields = ["organization"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not self.has_change_permission(request, obj):
            raise PermissionDenied("No grant lets you change this organisation's billing.")
        with tenant_context(obj.organization):
            pricing_services.billing_profile_update(
                organization=obj.organization, actor=Actor.staff(request.user), currency=obj.currency,
                tier=obj.tier, payment_terms_days=obj.payment_terms_days, tax_exempt=obj.tax_exempt)


class FindingInline(admin.TabularInline):
    model = ReconciliationFinding
    fields = ["kind", "organization", "ms_subscription_id", "charge_day", "ms_quantity", "our_quantity",
              "ms_amount", "our_amount", "at_risk", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    show_change_link = False
    ordering = ["-at_risk"]

    def get_queryset(self, request):
        # A partner-wide run, but each finding names a customer: only those whose grant covers billing.
        # Findings matched to no customer name none, so they stay visible to staff (row-level security lets
        # the application role read them, never write them; the run's view reads the rest in the grants'
        # tenant context).
        granted = list(grants_for_area(request, "billing"))
        return super().get_queryset(request).filter(Q(organization__isnull=True) | Q(organization_id__in=granted))


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(admin.ModelAdmin):
    """Reconciliation against Microsoft: findings by money at risk. "Reconcile now" imports Microsoft's
    unbilled line items and matches them with every customer's invoice lines."""

    list_display = ["started_at", "source", "status", "items", "total_at_risk"]
    readonly_fields = ["source", "status", "started_at", "finished_at", "items", "summary", "error"]
    inlines = [FindingInline]
    actions = ["reconcile_now"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The findings inline reads rows of the customers whose grant covers billing: inside their tenant
        # context, rendered there, so row-level security shows what the inline's filter asks for.
        with tenant_context(*grants_for_area(request, "billing"), savepoint=False):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response

    @admin.display(description="Money at risk")
    def total_at_risk(self, obj):
        return obj.summary.get("total_at_risk", "")

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Reconcile now (Microsoft's unbilled line items)")
    def reconcile_now(self, request, queryset):
        try:
            run = reconciliation_services.reconciliation_run(actor=Actor.staff(request.user), source="unbilled")
        except reconciliation_services.ReconciliationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Matched {run.items} line items: {run.summary.get('total_at_risk')} at risk.",
                          messages.SUCCESS)


class ReadOnlyTenantAdmin(GrantScopedAdmin, ReadOnlyAdmin):
    grant_area = "billing"
    list_select_related = ["organization"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyTenantAdmin):
    """Issued documents are immutable; staff record bank transfers here. Corrections are credit notes."""

    list_display = ["number", "organization", "kind", "status", "currency", "total", "amount_paid", "issued_at",
                    "due_on"]
    list_filter = ["kind", "status", "currency"]
    search_fields = ["number"]
    fields = ["number", "organization", "kind", "status", "currency", "subtotal", "tax_total", "total",
              "amount_paid", "tax_note", "issued_at", "due_on", "paid_at", "run_period", "credited_invoice", "reason"]
    actions = ["record_bank_transfer"]

    @admin.action(description="Record a bank transfer (all or part of the balance)")
    def record_bank_transfer(self, request, queryset):
        def apply(invoice, data):
            payment_services.payment_record_bank_transfer(
                organization=invoice.organization, actor=Actor.staff(request.user), user=request.user,
                invoice=invoice, amount=data["amount"] or invoice.balance, reference=data["reference"])

        return _with_reason(self, request, queryset, title="Record a bank transfer", action="record_bank_transfer",
                            apply=apply, form_class=BankTransferForm)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyTenantAdmin):
    list_display = ["invoice", "organization", "method", "currency", "amount", "reference", "received_at"]
    list_filter = ["method"]
    fields = ["invoice", "organization", "method", "currency", "amount", "reference", "received_at"]
    actions = ["refund_payment"]

    @admin.action(description="Refund all or part of a payment")
    def refund_payment(self, request, queryset):
        def apply(payment, data):
            refunded = payment.refunds.count()
            payment_services.payment_refund(
                organization=payment.organization, actor=Actor.staff(request.user), user=request.user,
                payment=payment, amount=data["amount"] or None, reason=data["reason"],
                reference=data["bank_reference"], idempotency_key=f"staff-refund:{payment.pk}:{refunded}")

        return _with_reason(self, request, queryset, title="Refund payments", action="refund_payment", apply=apply,
                            form_class=RefundForm)
