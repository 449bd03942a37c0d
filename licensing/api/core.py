"""Licensing API: catalog products, subscriptions (buy, change, cancel, schedule) and provisioning operations.

Thin: serializers parse and present, services decide. Changes reach Microsoft
asynchronously: responses carry the provisioning operation to follow
(``GET /provisioning-operations/{id}``). POSTs honour ``Idempotency-Key``.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiKey
from accounts.roles import Perm
from accounts.team import actor_role, audit_actor
from core.api.errors import ApiError
from core.api.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from core.api.serializers import ModelSerializer
from core.api.views import OrganizationViewSet
from licensing import nce
from licensing.models import Price, Product, ProvisioningOperation, Subscription
from licensing.pricing import customer_price, customer_prices
from licensing.selectors import assigned_by_subscription, catalog_products, product_offers, subscriptions_for
from licensing.selectors.usage import every_subscription_on
from licensing.services import purchases
from licensing.services import subscriptions as subscription_services
from licensing.services.seats import SeatsStillAssigned

CONFLICT_CODES = {"change_in_progress", "scheduled_changes_would_be_wiped", "not_ready", "no_tenant",
                  "agreement_required"}


def service_error(exc: Exception) -> ApiError:
    """A refusal from a service, as the API's stable error (400 for bad input, 409 for the wrong moment)."""
    if isinstance(exc, SeatsStillAssigned):
        return ApiError(str(exc), code=exc.code, status_code=409, extra=exc.as_fields())
    if isinstance(exc, nce.RuleViolation):
        return ApiError(str(exc), code=exc.code, status_code=409 if exc.code in CONFLICT_CODES else 400)
    code = getattr(exc, "code", None) or "invalid"
    return ApiError(" ".join(exc.messages), code=code, status_code=409 if code in CONFLICT_CODES else 400)


# --- catalog -----------------------------------------------------------------------------------
class OfferSerializer(ModelSerializer):
    offer_id = serializers.UUIDField(source="id", read_only=True)
    catalog_item_id = serializers.CharField(source="availability.catalog_item_id", read_only=True)
    unit_price = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    explanation = serializers.SerializerMethodField()

    class Meta:
        model = Price
        fields = ["offer_id", "catalog_item_id", "term_duration", "billing_cycle", "unit_price", "currency",
                  "cancellation_window", "explanation"]

    def _quote(self, obj):
        # The product list and detail quote their offers at once (ProductViewSet._quoted); anything else, on
        # first use.
        cache = self.context.setdefault("_quotes", {})
        if obj.pk not in cache:
            cache[obj.pk] = customer_price(organization=self.context["request"].organization, price=obj)
        return cache[obj.pk]

    # A decimal string, or null where the organisation has no price for the offer.
    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True))
    def get_unit_price(self, obj):
        quoted = self._quote(obj)
        return None if quoted is None else str(quoted.amount)

    def get_currency(self, obj) -> str:
        quoted = self._quote(obj)
        return obj.currency if quoted is None else quoted.currency

    def get_explanation(self, obj) -> str:
        quoted = self._quote(obj)
        return nce.offer_in_words(term_duration=obj.term_duration, billing_cycle=obj.billing_cycle,
                                  unit_price=quoted.amount if quoted else None, currency=self.get_currency(obj),
                                  cancellation_window=obj.cancellation_window or "P7D")


class ProductSerializer(ModelSerializer):
    offers = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "product_id", "title", "description", "family", "publisher", "offers"]

    @extend_schema_field(OfferSerializer(many=True))
    def get_offers(self, obj):
        return OfferSerializer(offers_of(obj), many=True, context=self.context).data


def offers_of(product: Product) -> list[Price]:
    """The product's offers, from what the catalog query prefetched, or read when it was not."""
    offers = [p for sku in product.skus.all() for a in sku.availabilities.all() for p in getattr(a, "offers", [])]
    if not offers and not hasattr(product, "_prefetched_objects_cache"):
        offers = product_offers(product)
    return offers


@extend_schema_view(
    list=extend_schema(
        summary="List catalog products",
        parameters=[
            OpenApiParameter("search", str, description="Words in the title or description."),
            OpenApiParameter("family", str, description="Product family, e.g. 'Microsoft 365'."),
            OpenApiParameter("term", str, enum=Price.Term.values),
            OpenApiParameter("billing_cycle", str, enum=Price.BillingCycle.values),
        ],
    ),
    retrieve=extend_schema(summary="Get a catalog product with its offers and your prices"),
)
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    """The catalog is shared, so it is the one licensing resource not filtered by organisation."""

    model = Product
    serializer_class = ProductSerializer

    def scoped_queryset(self):
        # Never reached: list and retrieve read the shared catalog, which has no organisation column.
        raise NotImplementedError

    def _products(self):
        params = self.request.query_params
        return catalog_products(search=params.get("search", "").strip(), family=params.get("family", ""),
                                term=params.get("term", ""), billing_cycle=params.get("billing_cycle", ""))

    def _quoted(self, products: list, *, many: bool):
        """The serializer of ``products`` (of its one product unless ``many``), every offer's price quoted in one
        call rather than one per offer."""
        offers = [offer for product in products for offer in offers_of(product)]
        quotes = customer_prices(organization=self.request.organization, prices=offers)
        serializer = self.get_serializer(products if many else products[0], many=many)
        serializer.context["_quotes"] = {offer.pk: quote for offer, quote in zip(offers, quotes, strict=True)}
        return serializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self._products())
        return self.get_paginated_response(self._quoted(page, many=True).data)

    def retrieve(self, request, pk=None, *args, **kwargs):
        product = self._products().filter(pk=pk).first() if _is_uuid(pk) else None
        if product is None:
            raise ApiError("Product not found.", code="not_found", status_code=404)
        return Response(self._quoted([product], many=False).data)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- subscriptions --------------------------------------------------------------------------------
class SeatBatchSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(source="remaining")
    added_at = serializers.DateTimeField()
    refundable_until = serializers.DateTimeField()


class SubscriptionSerializer(ModelSerializer):
    assigned_seats = serializers.SerializerMethodField()
    refundable_quantity = serializers.SerializerMethodField()
    refundable_batches = serializers.SerializerMethodField()
    cancellation_window_open = serializers.SerializerMethodField()
    term_ends_on = serializers.DateField(read_only=True, allow_null=True,
                                         help_text="Last day of the term (Microsoft's commitmentEndDate).")
    renews_on = serializers.DateField(read_only=True, allow_null=True,
                                      help_text="The day after the term ends, when it renews if auto-renew is on.")
    last_day_to_reduce = serializers.DateField(
        read_only=True, allow_null=True,
        help_text="Schedule fewer seats for the next term by the end of this day, UTC.")
    monthly_cost = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True,
                                            help_text="Quantity times the unit price, per month.")

    class Meta:
        model = Subscription
        fields = ["id", "ms_subscription_id", "catalog_item_id", "product_title", "friendly_name", "status",
                  "quantity", "assigned_seats", "term_duration", "billing_cycle", "auto_renew", "unit_price",
                  "monthly_cost", "currency", "start_date", "commitment_end", "term_ends_on", "renews_on",
                  "last_day_to_reduce", "cancellation_allowed_until",
                  "cancellation_window_open", "refundable_quantity", "refundable_batches", "scheduled_next_term",
                  "suspension_reason", "created_at"]
        read_only_fields = fields

    def _now(self):
        return timezone.now()

    def get_assigned_seats(self, obj) -> int:
        return self.context.get("assigned", {}).get(obj.pk, 0)

    def get_refundable_quantity(self, obj) -> int:
        return nce.refundable_quantity(list(obj.seat_batches.all()), self._now())

    @extend_schema_field(SeatBatchSerializer(many=True))
    def get_refundable_batches(self, obj):
        now = self._now()
        return SeatBatchSerializer(
            [b for b in obj.seat_batches.all() if nce.is_open(b.refundable_until, now) and b.remaining], many=True
        ).data

    def get_cancellation_window_open(self, obj) -> bool:
        return nce.is_open(obj.cancellation_allowed_until, self._now())


class OperationSerializer(ModelSerializer):
    class Meta:
        model = ProvisioningOperation
        fields = ["id", "kind", "status", "target_type", "target_id", "ms_request_id", "attempts", "milestones",
                  "next_attempt_at", "started_at", "finished_at", "last_error_code", "failure_reason", "created_at"]
        read_only_fields = fields


class PurchaseInputSerializer(serializers.Serializer):
    offer_id = serializers.UUIDField(help_text="An offer id from the product's offers (term and billing included).")
    quantity = serializers.IntegerField(min_value=1)
    auto_renew = serializers.BooleanField(default=True)


class PurchaseResultSerializer(serializers.Serializer):
    order_id = serializers.UUIDField()
    status = serializers.CharField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    operation = OperationSerializer(allow_null=True)


class ChangeInputSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, required=False)
    auto_renew = serializers.BooleanField(required=False)
    confirm_wipe_scheduled = serializers.BooleanField(
        default=False, help_text="A quantity change deletes changes scheduled for the next term; confirm it."
    )
    release = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=1000,
        help_text="License assignment ids of this subscription's license to unassign first, in the same step: "
                  "the reduction goes ahead only once every one of them is removed.",
    )

    def validate(self, attrs):
        if ("quantity" in attrs) == ("auto_renew" in attrs):
            raise serializers.ValidationError("Send either quantity or auto_renew.")
        return attrs


class ScheduleInputSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, required=False)
    term_duration = serializers.ChoiceField(choices=Price.Term.choices, required=False)
    billing_cycle = serializers.ChoiceField(choices=Price.BillingCycle.choices, required=False)
    catalog_item_id = serializers.CharField(required=False, help_text="Upgrade to this offer at renewal.")
    clear = serializers.BooleanField(default=False, help_text="Remove what is scheduled.")


class AcceptedSerializer(serializers.Serializer):
    subscription = SubscriptionSerializer()
    operation = OperationSerializer()
    warning = serializers.CharField(
        required=False, help_text="A change that lowers the seats at the end of the term while more licenses are "
                                  "assigned than it leaves: who to unassign before then.")


@extend_schema_view(
    list=extend_schema(summary="List subscriptions",
                       parameters=[OpenApiParameter("status", str, enum=Subscription.Status.values)]),
    retrieve=extend_schema(summary="Get a subscription"),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = Subscription
    serializer_class = SubscriptionSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_permissions = {"create": Perm.LICENSES_MANAGE, "partial_update": Perm.LICENSES_MANAGE,
                            "cancel": Perm.LICENSES_MANAGE, "schedule": Perm.LICENSES_MANAGE}

    def scoped_queryset(self):
        params = self.request.query_params
        return subscriptions_for(self.organization, status=params.get("status", ""), search=params.get("search", ""),
                                 sort=params.get("ordering", ""))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False) or self.organization is None:
            return context
        # A list page holding every subscription is what the seats are spread over: not read a second time.
        page = getattr(self.paginator, "page", None) if self.action == "list" else None
        params = self.request.query_params
        every = None if page is None else every_subscription_on(page, filtered=bool(params.get("status")
                                                                                    or params.get("search")))
        context["assigned"] = assigned_by_subscription(self.organization, subscriptions=every)
        return context

    def _accepted(self, subscription, operation, warning: str = ""):
        subscription.refresh_from_db()
        body = {"subscription": SubscriptionSerializer(subscription, context=self.get_serializer_context()).data,
                "operation": OperationSerializer(operation).data}
        if warning:
            body["warning"] = warning
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Buy a subscription",
        description="Places an order for an offer. Above the organisation's approval threshold, an order by a "
                    "non-owner waits for an owner (status awaiting_approval, no operation yet).",
        request=PurchaseInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: PurchaseResultSerializer, **error_responses(400, 403, 409)},
    )
    def create(self, request):
        data = PurchaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        price = Price.objects.select_related("availability__sku").filter(pk=data.validated_data["offer_id"]).first()
        if price is None:
            raise ApiError("No such offer.", code="invalid", status_code=400, fields={"offer_id": ["Unknown offer."]})
        user = None if isinstance(self.actor, ApiKey) else self.actor
        try:
            order = purchases.order_place(
                organization=self.organization, actor=audit_actor(self.actor), user=user,
                role=actor_role(self.actor, self.organization), price=price,
                quantity=data.validated_data["quantity"], auto_renew=data.validated_data["auto_renew"],
                idempotency_key=request.headers.get("Idempotency-Key", "")[:100],
            )
        except (nce.RuleViolation, ValidationError) as exc:
            raise service_error(exc) from exc
        return Response(
            {"order_id": order.pk, "status": order.status, "total": order.total, "currency": order.currency,
             "operation": OperationSerializer(order.operation).data if order.operation_id else None},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Change seats or auto-renew",
        description="Adding seats is always possible. Removing seats is possible only for seats added in the last "
                    "7 days; otherwise the answer is 400 seat_window_closed: schedule it for the next term instead. "
                    "Removing seats below the licenses assigned is 409 seats_assigned (with assigned, requested and "
                    "short) and nothing is queued; name the users to release in `release` to do both in one step.",
        request=ChangeInputSerializer,
        responses={202: AcceptedSerializer, **error_responses(400, 403, 404, 409)},
    )
    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        data = ChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            if "quantity" in values:
                operation = subscription_services.subscription_change_quantity(
                    subscription=subscription, actor=audit_actor(self.actor), quantity=values["quantity"],
                    confirm_wipe_scheduled=values["confirm_wipe_scheduled"], release=values["release"],
                    requested_by=None if isinstance(self.actor, ApiKey) else self.actor,
                )
            else:
                operation = subscription_services.subscription_set_auto_renew(
                    subscription=subscription, actor=audit_actor(self.actor), enabled=values["auto_renew"]
                )
        except (nce.RuleViolation, ValidationError) as exc:
            raise service_error(exc) from exc
        warning = ""
        if values.get("auto_renew") is False:
            warning = subscription_services.seat_warning_at_term_end(subscription=subscription, quantity=0)
        return self._accepted(subscription, operation, warning)

    @extend_schema(
        summary="Cancel a subscription",
        description="Only within 7 days of purchase or renewal (400 cancellation_window_closed after).",
        request=None, parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: AcceptedSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        subscription = self.get_object()
        try:
            operation = subscription_services.subscription_cancel(subscription=subscription,
                                                                  actor=audit_actor(self.actor))
        except (nce.RuleViolation, ValidationError) as exc:
            raise service_error(exc) from exc
        return self._accepted(subscription, operation)

    @extend_schema(
        summary="Schedule changes for the next term",
        description="Quantity (also lower), term, billing frequency or an upgrade offer, applied at renewal. "
                    "Any later immediate change deletes them (Microsoft's rule).",
        request=ScheduleInputSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: AcceptedSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        subscription = self.get_object()
        data = ScheduleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        actor = audit_actor(self.actor)
        try:
            if values.get("clear"):
                operation = subscription_services.subscription_clear_schedule(subscription=subscription, actor=actor)
            else:
                operation = subscription_services.subscription_schedule_change(
                    subscription=subscription, actor=actor, quantity=values.get("quantity"),
                    term_duration=values.get("term_duration"), billing_cycle=values.get("billing_cycle"),
                    catalog_item_id=values.get("catalog_item_id"),
                )
        except (nce.RuleViolation, ValidationError) as exc:
            raise service_error(exc) from exc
        warning = ""
        if not values.get("clear") and values.get("quantity") is not None:
            warning = subscription_services.seat_warning_at_term_end(subscription=subscription,
                                                                     quantity=values["quantity"])
        return self._accepted(subscription, operation, warning)


@extend_schema_view(
    list=extend_schema(summary="List provisioning operations",
                       parameters=[OpenApiParameter("status", str, enum=ProvisioningOperation.Status.values)]),
    retrieve=extend_schema(summary="Get a provisioning operation (follow it until it is succeeded, failed or dead)"),
)
class ProvisioningOperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    model = ProvisioningOperation
    serializer_class = OperationSerializer

    def scoped_queryset(self):
        queryset = ProvisioningOperation.objects.for_org(self.organization).order_by("-created_at")
        wanted = self.request.query_params.get("status", "")
        return queryset.filter(status=wanted) if wanted else queryset
