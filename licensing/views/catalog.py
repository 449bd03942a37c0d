"""Catalog browsing, the purchase flow (choose, review, confirm), orders and their approval."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm, Role
from core.pagination import ShortPageCountPaginator
from licensing import nce, selectors
from licensing.forms import CatalogFilterForm, PurchaseForm
from licensing.models import Order, Product
from licensing.pricing import customer_prices
from licensing.services import purchases

from . import actor_of, error_text


def _offer_rows(organization, offers) -> list[dict]:
    rows = []
    for p, quoted in zip(offers, customer_prices(organization=organization, prices=offers), strict=True):
        unit, currency = (quoted.amount, quoted.currency) if quoted else (None, p.currency)
        rows.append({"price": p, "unit_price": unit, "currency": currency,
                     "words": nce.offer_in_words(term_duration=p.term_duration, billing_cycle=p.billing_cycle,
                                                 unit_price=unit, currency=currency,
                                                 cancellation_window=p.cancellation_window or "P7D")})
    return rows


class CatalogPage(OrganizationMixin, TemplateView):
    permission = Perm.LICENSES_MANAGE
    template_name = "licensing/catalog.html"

    def get_context_data(self, **kwargs):
        form = CatalogFilterForm(self.request.GET or None, families=selectors.catalog_families())
        filters = form.cleaned_data if form.is_valid() else {}
        products = selectors.catalog_products(
            search=filters.get("q", "").strip(), family=filters.get("family", ""), term=filters.get("term", ""),
            billing_cycle=filters.get("billing", ""),
        )
        page = ShortPageCountPaginator(products, 25).get_page(self.request.GET.get("page"))
        offers_of = {product.pk: [p for sku in product.skus.all() for a in sku.availabilities.all() for p in a.offers]
                     for product in page}
        # The whole page quoted at once: the organisation's price terms are read once, not per offer.
        every_offer = [p for offers in offers_of.values() for p in offers]
        quote_of = dict(zip((p.pk for p in every_offer),
                            customer_prices(organization=self.organization, prices=every_offer), strict=True))
        rows = []
        for product in page:
            offers = offers_of[product.pk]
            quotes = [quote_of[p.pk] for p in offers]
            monthly = [nce.monthly_equivalent(q.amount, p.billing_cycle) for q, p in zip(quotes, offers, strict=True)
                       if q]
            currency = next((q.currency for q in quotes if q), offers[0].currency if offers else "USD")
            rows.append({"product": product, "offers": len(offers), "from_price": min(monthly) if monthly else None,
                         "currency": currency})
        return super().get_context_data(form=form, page_obj=page, rows=rows, **kwargs)


class ProductPage(OrganizationMixin, View):
    """An offer's explanation in plain words, and the first step of buying it."""

    permission = Perm.LICENSES_MANAGE

    def _product(self, pk) -> Product:
        return get_object_or_404(Product, pk=pk, is_active=True)

    def _render(self, request, product, form, review=None, status=200):
        offers = selectors.product_offers(product)
        return render(request, "licensing/product.html", {
            "product": product, "sku": product.skus.first(), "offer_rows": _offer_rows(self.organization, offers),
            "form": form, "review": review, "organization": self.organization,
            # One token per review: confirming twice (double click, back and resubmit) places one order.
            "order_key": uuid.uuid4() if review else None,
        }, status=status)

    def get(self, request, pk, *args, **kwargs):
        product = self._product(pk)
        offers = selectors.product_offers(product)
        initial = {"offer": request.GET.get("offer") or (offers[0].pk if offers else None)}
        if request.GET.get("quantity", "").isdigit() and int(request.GET["quantity"]) >= 1:
            initial["quantity"] = int(request.GET["quantity"])  # from a "Buy N more" link
        return self._render(request, product, PurchaseForm(offers=offers, initial=initial))

    def post(self, request, pk, *args, **kwargs):
        """Step 2 (review) when ``step=review``; step 3 (confirm) places the order."""
        product = self._product(pk)
        form = PurchaseForm(request.POST, offers=selectors.product_offers(product))
        if not form.is_valid():
            return self._render(request, product, form, status=400)
        data = form.cleaned_data
        try:
            if request.POST.get("step") != "confirm":
                review = purchases.order_quote(organization=self.organization, price=data["offer"],
                                               quantity=data["quantity"], auto_renew=data["auto_renew"])
                return self._render(request, product, form, review=review)
            order = purchases.order_place(
                organization=self.organization, actor=actor_of(request), user=request.user, role=self.membership.role,
                price=data["offer"], quantity=data["quantity"], auto_renew=data["auto_renew"],
                idempotency_key=request.POST.get("idempotency_key", "")[:100],
            )
        except (nce.RuleViolation, ValidationError) as exc:
            form.add_error(None, error_text(exc))
            return self._render(request, product, form, status=400)
        if order.status == Order.Status.AWAITING_APPROVAL:
            messages.info(request, "The order is above your organisation's approval threshold: an owner must "
                                   "approve it.")
        return redirect("licensing:order", org_slug=self.organization.slug, pk=order.pk)


class OrdersPage(OrganizationMixin, TemplateView):
    template_name = "licensing/orders.html"

    def get_context_data(self, **kwargs):
        page = ShortPageCountPaginator(selectors.orders_for(self.organization), 25).get_page(
            self.request.GET.get("page"))
        return super().get_context_data(page_obj=page, **kwargs)


class OrderPage(OrganizationMixin, TemplateView):
    """The order with its provisioning timeline; polled by htmx while it runs."""

    template_name = "licensing/order.html"

    def get_context_data(self, **kwargs):
        order = selectors.orders_for(self.organization).filter(pk=self.kwargs["pk"]).first()
        if order is None:
            raise Http404("No such order.")
        timeline = selectors.operation_timeline(order.operation) if order.operation else []
        done = sum(1 for step in timeline if step["done"])
        return super().get_context_data(
            order=order, operation=order.operation, timeline=timeline, done_steps=done, total_steps=len(timeline),
            finished=order.status in (Order.Status.COMPLETED, Order.Status.FAILED, Order.Status.REJECTED),
            can_approve=self.membership.role == Role.OWNER and order.status == Order.Status.AWAITING_APPROVAL,
            subscriptions=order.subscriptions.all(), **kwargs,
        )


class OrderDecision(OrganizationMixin, View):
    permission = Perm.LICENSES_MANAGE

    def post(self, request, pk, decision, *args, **kwargs):
        order = get_object_or_404(Order.objects.for_org(self.organization), pk=pk)
        if self.membership.role != Role.OWNER:
            # The order is the member's own organisation's and they can see it: a refusal, not a 404.
            raise PermissionDenied("Only owners decide on orders.")
        try:
            if decision == "approve":
                purchases.order_approve(order=order, actor=actor_of(request), user=request.user)
            else:
                purchases.order_reject(order=order, actor=actor_of(request), user=request.user,
                                       reason=request.POST.get("reason", ""))
        except (nce.RuleViolation, ValidationError) as exc:
            messages.error(request, error_text(exc))
        return redirect("licensing:order", org_slug=self.organization.slug, pk=pk)
