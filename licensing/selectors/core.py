"""Reads for the licensing core: catalog, tenant onboarding state, orders, subscriptions, operations.

Tenant reads are scoped by organisation; the catalog is shared by everyone.
"""

from __future__ import annotations

from django.db.models import Case, DecimalField, ExpressionWrapper, F, Prefetch, Q, QuerySet, Value, When
from django.utils.dateparse import parse_datetime

from accounts.models import MicrosoftTenant
from licensing.models import (
    CustomerAgreement,
    GdapRelationship,
    Order,
    Price,
    Product,
    ProvisioningOperation,
    SeatBatch,
    Subscription,
    SubscriptionEvent,
    TenantOnboarding,
)

from .usage import assigned_seats_by_subscription


def catalog_products(*, search: str = "", family: str = "", term: str = "", billing_cycle: str = "") -> QuerySet:
    """Active products with their purchasable offers (prices) prefetched, filtered as the catalog page asks."""
    prices = Price.objects.filter(is_active=True, availability__is_active=True, availability__is_purchasable=True)
    if term:
        prices = prices.filter(term_duration=term)
    if billing_cycle:
        prices = prices.filter(billing_cycle=billing_cycle)
    products = Product.objects.filter(is_active=True, skus__availabilities__prices__in=prices).distinct()
    if search:
        products = products.filter(Q(title__icontains=search) | Q(description__icontains=search)
                                   | Q(skus__part_number__icontains=search)).distinct()
    if family:
        products = products.filter(family=family)
    return products.prefetch_related(
        Prefetch("skus__availabilities__prices",
                 queryset=prices.order_by("term_duration", "billing_cycle"), to_attr="offers")
    ).order_by("family", "title")


def catalog_families() -> list[str]:
    return list(Product.objects.filter(is_active=True).order_by("family").values_list("family", flat=True).distinct())


def product_offers(product: Product) -> list[Price]:
    return list(
        Price.objects.filter(availability__sku__product=product, is_active=True, availability__is_active=True,
                             availability__is_purchasable=True)
        .select_related("availability__sku__product").order_by("term_duration", "billing_cycle")
    )


def tenant_of(organization) -> MicrosoftTenant | None:
    return MicrosoftTenant.objects.for_org(organization).first()


def onboarding_of(organization) -> TenantOnboarding | None:
    return TenantOnboarding.objects.for_org(organization).select_related("operation", "consent_operation").first()


def gdap_relationships(organization) -> QuerySet[GdapRelationship]:
    return GdapRelationship.objects.for_org(organization).order_by("-created_at")


def agreements(organization) -> QuerySet[CustomerAgreement]:
    return CustomerAgreement.objects.for_org(organization).select_related("accepted_by").order_by("-accepted_at")


# Sort keys the Subscriptions page and API accept; anything else falls back to the name.
SUBSCRIPTION_SORTS = {
    "name": ("product_title", "-created_at"),
    "status": ("status", "product_title"),
    "seats": ("quantity", "product_title"),
    "renews": ("commitment_end", "product_title"),
    "cost": ("monthly_cost_sort", "product_title"),
}


def subscriptions_for(organization, *, status: str = "", search: str = "", sort: str = "") -> QuerySet[Subscription]:
    """The organisation's subscriptions; ``search`` matches part of the name or the Microsoft id, ``sort`` is a
    key of SUBSCRIPTION_SORTS, "-" first for descending."""
    months = Case(
        When(billing_cycle="annual", then=Value(12)), When(billing_cycle="triennial", then=Value(36)),
        default=Value(1),
    )
    queryset = (
        Subscription.objects.for_org(organization)
        .select_related("sku__product")
        .prefetch_related(
            Prefetch("seat_batches", queryset=SeatBatch.objects.for_org(organization).order_by("added_at"))
        )
        .annotate(monthly_cost_sort=ExpressionWrapper(
            F("unit_price") * F("quantity") / months, output_field=DecimalField(max_digits=16, decimal_places=4)))
    )
    if status:
        queryset = queryset.filter(status=status)
    search = (search or "").replace("\x00", "").strip()[:200]
    if search:
        queryset = queryset.filter(
            Q(product_title__icontains=search) | Q(friendly_name__icontains=search)
            | Q(ms_subscription_id__iexact=search) | Q(catalog_item_id__icontains=search)
        )
    descending = sort.startswith("-")
    fields = SUBSCRIPTION_SORTS.get(sort.lstrip("-"), SUBSCRIPTION_SORTS["name"])
    if descending:
        fields = (f"-{fields[0]}", *fields[1:])
    return queryset.order_by(*fields)


def subscription_events(subscription: Subscription) -> QuerySet[SubscriptionEvent]:
    return SubscriptionEvent.objects.for_org(subscription.organization_id).filter(subscription=subscription)


def assigned_by_subscription(organization, *, subscriptions: list[Subscription] | None = None) -> dict:
    """Seats assigned per subscription id, from the assignments the portal knows (``subscriptions``: every
    subscription of the organisation, already read; see :func:`~licensing.selectors.usage.every_subscription_on`)."""
    return assigned_seats_by_subscription(organization, subscriptions=subscriptions)


def orders_for(organization) -> QuerySet[Order]:
    return Order.objects.for_org(organization).select_related("operation", "requested_by").order_by("-created_at")


def operations_for(organization, *, target=None, status: str = "") -> QuerySet[ProvisioningOperation]:
    queryset = ProvisioningOperation.objects.for_org(organization)
    if target is not None:
        queryset = queryset.filter(target_type=type(target).__name__, target_id=str(target.pk))
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at")


def pending_operation_for(subscription: Subscription) -> ProvisioningOperation | None:
    return operations_for(subscription.organization_id, target=subscription).filter(
        status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING]
    ).first()


TIMELINE = (
    ("submitted", "Submitted"),
    ("accepted", "Accepted by Microsoft"),
    ("subscription_created", "Subscription created"),
    ("provisioned", "Subscription active"),
    ("seats_visible", "Seats visible in your tenant"),
)


REDUCTION_TIMELINE = (
    ("submitted", "Submitted"),
    ("licenses_released", "Chosen licenses unassigned"),
    ("seats_changed", "Seats reduced at Microsoft"),
)


def has_timeline(operation: ProvisioningOperation) -> bool:
    return operation.kind == "order.checkout" or is_releasing_reduction(operation)


def is_releasing_reduction(operation: ProvisioningOperation) -> bool:
    return operation.kind == "subscription.set_quantity" and bool((operation.payload or {}).get("after_operations"))


def operation_timeline(operation: ProvisioningOperation) -> list[dict]:
    """The steps of an order's provisioning (or of a reduction that releases licenses first), done or not,
    for the timeline and its progress bar."""
    labels = REDUCTION_TIMELINE if is_releasing_reduction(operation) else TIMELINE
    steps = []
    for key, label in labels:
        # Milestones are stored as UTC ISO strings in JSON; a datetime lets the page show the organisation's time.
        stamp = operation.milestones.get(key)
        steps.append({"key": key, "label": label, "at": parse_datetime(stamp) if stamp else None,
                      "done": key in operation.milestones, "detail": ""})
    # Microsoft provisions an order line by line: say how far it has got while it is not done.
    ready, total = (operation.checkpoint or {}).get("lines_ready") or (0, 0)
    if total and "provisioned" not in operation.milestones:
        for step in steps:
            if step["key"] == "provisioned":
                step["detail"] = f"{ready} of {total} order lines ready"
    return steps
