"""Billing API: invoices and credit notes (read-only, with lines, PDF), payment methods (references only) and the
billing profile. Thin: selectors read, services write."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiKey
from accounts.roles import Perm
from accounts.team import audit_actor
from billing.models import Invoice, InvoiceLine, Payment, PaymentMethod, Refund
from billing.pdf import invoice_pdf
from billing.selectors import invoices as selectors
from billing.selectors.pricing import billing_profile
from billing.services import payments as payment_services
from billing.services import pricing as pricing_services
from billing.views import seller
from core.api.errors import ApiError
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.serializers import ModelSerializer
from core.api.views import OrganizationAPIView, OrganizationViewSet


class InvoiceLineSerializer(ModelSerializer):
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = InvoiceLine
        fields = ["position", "kind", "description", "subscription_id", "ms_subscription_id", "period_start",
                  "period_end", "quantity", "unit_price", "amount", "explanation"]


class RefundSerializer(ModelSerializer):
    class Meta:
        model = Refund
        fields = ["amount", "currency", "reference", "reason", "refunded_at"]


class PaymentSerializer(ModelSerializer):
    card = serializers.StringRelatedField(source="payment_method", allow_null=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = ["amount", "currency", "method", "card", "reference", "received_at", "refunds"]


class PayInputSerializer(serializers.Serializer):
    payment_method = serializers.UUIDField(help_text="A saved card's id (/payment-methods/).")
    amount = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                   help_text="A decimal string with at most two decimals; omitted: the balance.")
    currency = serializers.CharField(required=False, allow_blank=True, max_length=3,
                                     help_text="If given, must be the invoice's currency.")


class InvoiceSerializer(ModelSerializer):
    credited_invoice = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    lines = serializers.SerializerMethodField()
    payments = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = ["id", "kind", "number", "status", "currency", "subtotal", "tax_name", "tax_rate_percent",
                  "tax_total", "total", "amount_paid", "balance", "tax_note", "issued_at", "due_on", "paid_at",
                  "run_period", "credited_invoice", "reason", "lines", "payments"]

    @extend_schema_field(InvoiceLineSerializer(many=True))
    def get_lines(self, obj):
        if self.context.get("brief"):
            return []
        lines = selectors.invoice_lines(obj.organization_id, obj)
        return InvoiceLineSerializer(lines, many=True).data

    @extend_schema_field(PaymentSerializer(many=True))
    def get_payments(self, obj):
        """Payments with their refunds, oldest first (on the detail only, like the lines)."""
        if self.context.get("brief"):
            return []
        return PaymentSerializer(selectors.payments_for(obj.organization_id, obj), many=True).data


@extend_schema_view(
    list=extend_schema(summary="List invoices and credit notes", parameters=[
        OpenApiParameter("kind", str, enum=Invoice.Kind.values),
        OpenApiParameter("status", str, enum=Invoice.Status.values),
        OpenApiParameter("search", str, description="Part of the number or of a line's description."),
    ], description="Newest first. Lines and payments are included on the detail only (empty lists here)."),
    retrieve=extend_schema(summary="Get an invoice or credit note with its lines"),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = Invoice
    serializer_class = InvoiceSerializer
    http_method_names = ["get", "head", "options", "post"]
    required_permissions = {"GET": Perm.BILLING_VIEW, "HEAD": Perm.BILLING_VIEW, "POST": Perm.BILLING_MANAGE}

    def scoped_queryset(self):
        params = self.request.query_params
        return selectors.invoices_for(self.organization, kind=params.get("kind", ""),
                                      status=params.get("status", ""), search=params.get("search", "").strip()[:100])

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "brief": getattr(self, "action", "") == "list"}

    @extend_schema(summary="Download an invoice as PDF", responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        body = invoice_pdf(invoice=invoice, lines=list(selectors.invoice_lines(self.organization, invoice)),
                           seller=seller())
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


    @extend_schema(
        summary="Pay an invoice, all or part, with a saved card",
        description="Charges `amount` (a decimal string; omitted: the whole balance) to the saved card. More than "
                    "the balance is 400 overpayment; a card the bank declines is 400 with its code and nothing is "
                    "recorded; an invoice with nothing to pay is 409 not_payable. Send an Idempotency-Key: a "
                    "retry charges the card once.",
        request=PayInputSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: PaymentSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def pay(self, request, pk=None):
        invoice = self.get_object()
        data = PayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        method = selectors.payment_methods(self.organization).filter(pk=data.validated_data["payment_method"]).first()
        if method is None:
            raise ApiError("No such saved card.", code="invalid", fields={"payment_method": ["Unknown card."]})
        key = request.headers.get("Idempotency-Key", "")[:128]
        if not key:
            raise ApiError("Send an Idempotency-Key header, so that a retry charges the card once.",
                           code="idempotency_key_required")
        try:
            payment = payment_services.invoice_pay_by_card(
                organization=self.organization, actor=audit_actor(self.actor),
                user=None if isinstance(self.actor, ApiKey) else self.actor, invoice=invoice, method=method,
                idempotency_key=f"api:{key}", amount=data.validated_data.get("amount") or None,
                currency=data.validated_data.get("currency") or None)
        except ValidationError as exc:
            code = getattr(exc, "code", None) or "invalid"
            raise ApiError(" ".join(exc.messages), code=code,
                           status_code=409 if code == "not_payable" else 400) from None
        return Response(PaymentSerializer(payment).data, status=201)


class PaymentMethodSerializer(ModelSerializer):
    """A reference to the processor's token: never the token itself, never a card number."""

    class Meta:
        model = PaymentMethod
        fields = ["id", "gateway", "brand", "last4", "exp_month", "exp_year", "is_default", "created_at"]


@extend_schema_view(list=extend_schema(summary="List saved payment methods"),
                    retrieve=extend_schema(summary="Get a saved payment method"))
class PaymentMethodViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = PaymentMethod
    serializer_class = PaymentMethodSerializer
    http_method_names = ["get", "head", "options"]
    required_permissions = {"GET": Perm.PAYMENT_METHODS, "HEAD": Perm.PAYMENT_METHODS}

    def scoped_queryset(self):
        return selectors.payment_methods(self.organization)


class ContactSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, allow_blank=True, required=False, default="")
    email = serializers.EmailField()


class BillingProfileSerializer(serializers.Serializer):
    """How the organisation is billed. Currency, tier and payment terms are set by the reseller's staff;
    the legal name, address and tax id are the organisation's settings (``/api/v1/organization``)."""

    currency = serializers.CharField(read_only=True)
    tier = serializers.CharField(read_only=True)
    payment_terms_days = serializers.IntegerField(read_only=True)
    tax_exempt = serializers.BooleanField(read_only=True)
    contacts = ContactSerializer(many=True)


class BillingProfileView(OrganizationAPIView):
    serializer_class = BillingProfileSerializer
    required_permissions = {"GET": Perm.BILLING_VIEW, "PATCH": Perm.BILLING_MANAGE}
    http_method_names = ["get", "patch", "head", "options"]

    def _data(self, profile):
        return {"currency": profile.currency, "tier": profile.tier, "payment_terms_days": profile.payment_terms_days,
                "tax_exempt": profile.tax_exempt, "contacts": profile.contacts or []}

    @extend_schema(summary="The organisation's billing profile", responses={200: BillingProfileSerializer})
    def get(self, request):
        return Response(self._data(billing_profile(self.organization)))

    @extend_schema(summary="Change who receives invoices", request=BillingProfileSerializer,
                   responses={200: BillingProfileSerializer, **error_responses(400, 403)})
    def patch(self, request):
        data = BillingProfileSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "contacts" not in data.validated_data:
            raise ApiError("Send the contacts to change; the rest is set by the reseller.", code="invalid")
        try:
            profile = pricing_services.billing_profile_update(
                organization=self.organization, actor=audit_actor(self.actor),
                contacts=[dict(c) for c in data.validated_data["contacts"]])
        except ValidationError as exc:
            raise ApiError(" ".join(exc.messages), code="invalid") from None
        return Response(self._data(profile))
