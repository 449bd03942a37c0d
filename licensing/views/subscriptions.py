"""Subscriptions: list, detail with windows and the reduction simulator, and every lifecycle change."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from accounts.roles import Perm
from core.pagination import ShortPageCountPaginator
from licensing import nce, selectors
from licensing.forms import QuantityForm, ScheduleForm
from licensing.models import ProvisioningOperation, Subscription
from licensing.selectors import seats as selectors_seats
from licensing.selectors.usage import every_subscription_on
from licensing.services import subscriptions as subscription_services
from licensing.services.seats import SeatsStillAssigned, seat_pool_shortfall

from . import actor_of, error_text, well_formed_uuids


def _windows(subscription: Subscription, now) -> dict:
    batches = list(subscription.seat_batches.all())
    cancel_left = nce.time_left(subscription.cancellation_allowed_until, now)
    return {
        "cancel_open": cancel_left is not None,
        "cancel_countdown": nce.countdown_words(cancel_left),
        "refundable": nce.refundable_quantity(batches, now),
        "batches": [{"batch": b, "open": nce.is_open(b.refundable_until, now),
                     "countdown": nce.countdown_words(nce.time_left(b.refundable_until, now))} for b in batches],
    }


class SubscriptionsPage(OrganizationMixin, TemplateView):
    template_name = "licensing/subscriptions.html"

    def get_context_data(self, **kwargs):
        status = self.request.GET.get("status", "")
        status = status if status in Subscription.Status.values else ""
        search = self.request.GET.get("q", "")[:200]
        sort = self.request.GET.get("sort", "")
        sort = sort if sort.lstrip("-") in selectors.SUBSCRIPTION_SORTS else ""
        subscriptions = selectors.subscriptions_for(self.organization, status=status, search=search, sort=sort)
        page = ShortPageCountPaginator(subscriptions, 50).get_page(self.request.GET.get("page"))
        # A page holding every subscription is what the seats are spread over: not read a second time.
        assigned = selectors.assigned_by_subscription(
            self.organization, subscriptions=every_subscription_on(page, filtered=bool(status or search)))
        now = timezone.now()
        rows = [{"subscription": s, "assigned": assigned.get(s.pk, 0), **_windows(s, now)} for s in page]
        headers = [
            {"key": key, "label": label, "num": key in ("seats", "cost"),
             "sorted": sort.lstrip("-") == key or (not sort and key == "name"),
             "descending": sort.startswith("-"),
             "next": f"-{key}" if sort == key or (not sort and key == "name") else key}
            for key, label in (("name", "Subscription"), ("status", "Status"), ("seats", "Assigned / purchased"),
                               ("renews", "Renews on"), ("cost", "Monthly cost"))
        ]
        return super().get_context_data(page_obj=page, rows=rows, status=status, search=search, sort=sort,
                                        headers=headers, statuses=Subscription.Status.choices, **kwargs)


class SubscriptionMixin(OrganizationMixin):
    def get_subscription(self) -> Subscription:
        return get_object_or_404(selectors.subscriptions_for(self.organization), pk=self.kwargs["pk"])

    def back(self):
        return redirect("licensing:subscription", org_slug=self.organization.slug, pk=self.kwargs["pk"])


def _requested_quantity(request, default: int) -> int:
    """``?quantity=N`` from a "Buy N more" link prefills the seat change; anything else is ignored."""
    try:
        value = int(request.GET.get("quantity", default))
    except (TypeError, ValueError):
        return default
    return value if 1 <= value <= 1_000_000 else default


class SubscriptionPage(SubscriptionMixin, TemplateView):
    template_name = "licensing/subscription.html"

    def get_context_data(self, **kwargs):
        subscription = self.get_subscription()
        now = timezone.now()
        pending = selectors.pending_operation_for(subscription)
        return super().get_context_data(
            subscription=subscription, **_windows(subscription, now),
            assigned=selectors.assigned_by_subscription(self.organization).get(subscription.pk, 0),
            events=selectors.subscription_events(subscription)[:50],
            operations=selectors.operations_for(self.organization, target=subscription)[:10],
            pending=pending, can_manage=self.can(Perm.LICENSES_MANAGE),
            quantity_form=QuantityForm(initial={"quantity": _requested_quantity(self.request, subscription.quantity)}),
            schedule_form=ScheduleForm(initial={
                "quantity": (subscription.scheduled_next_term or {}).get("quantity", subscription.quantity),
                "term_duration": subscription.term_duration, "billing_cycle": subscription.billing_cycle,
            }),
            **kwargs,
        )


class ReductionSimulator(SubscriptionMixin, View):
    """htmx: what a new quantity (or cancellation, quantity 0) would refund and keep committed.

    The seat field sends itself under its form's name (``seats-quantity``); the cancel section asks
    with the same name and 0."""

    def get(self, request, *args, **kwargs):
        subscription = self.get_subscription()
        try:
            quantity = int(request.GET.get(QuantityForm().add_prefix("quantity"), subscription.quantity))
        except ValueError:
            quantity = subscription.quantity
        context = {"subscription": subscription, "quantity": quantity}
        if 0 <= quantity < subscription.quantity:
            context["plan"] = subscription_services.subscription_reduction_plan(subscription=subscription,
                                                                                new_quantity=quantity)
        return render(request, "licensing/_simulator.html", context)


class _SubscriptionAction(SubscriptionMixin, View):
    permission = Perm.LICENSES_MANAGE
    success_message = ""

    def post(self, request, *args, **kwargs):
        subscription = self.get_subscription()
        try:
            operation = self.act(request, subscription)
        except SeatsStillAssigned as exc:
            return self.seats_still_assigned(request, subscription, exc)
        except (nce.RuleViolation, ValidationError) as exc:
            messages.error(request, error_text(exc))
        else:
            if operation is not None:
                messages.success(request, self.success_message)
                self.warn(request, subscription)
        return self.back()

    def seats_still_assigned(self, request, subscription, exc: SeatsStillAssigned):
        messages.error(request, str(exc))
        return self.back()

    def warn(self, request, subscription) -> None:
        """A change accepted now that lowers the seats later says so (see seat_warning_at_term_end)."""


class ChangeQuantity(_SubscriptionAction):
    success_message = "Change sent to Microsoft. The page updates when it is done."

    def act(self, request, subscription):
        form = QuantityForm(request.POST)
        if not form.is_valid():
            raise ValidationError("Enter a whole number of seats.")
        return subscription_services.subscription_change_quantity(
            subscription=subscription, actor=actor_of(request), quantity=form.cleaned_data["quantity"],
            confirm_wipe_scheduled=form.cleaned_data["confirm_wipe_scheduled"], requested_by=request.user,
        )

    def seats_still_assigned(self, request, subscription, exc):
        # The way out, in the same flow: choose whose licenses to release, then reduce.
        messages.error(request, f"{exc} Choose whose licenses to release below.")
        url = reverse("licensing:subscription_reduce", kwargs={"org_slug": self.organization.slug,
                                                                "pk": subscription.pk})
        wipe = "&confirm_wipe_scheduled=1" if request.POST.get("confirm_wipe_scheduled") else ""
        return redirect(f"{url}?quantity={exc_quantity(request)}{wipe}")


def exc_quantity(request) -> int:
    """The seat count the refused form asked for (the seat-change form's fields carry its prefix)."""
    try:
        return int(request.POST.get(QuantityForm().add_prefix("quantity"), request.POST.get("quantity", 0)))
    except ValueError:
        return 0


class ReduceReleasing(SubscriptionMixin, TemplateView):
    """Reduce seats below the licenses held: pick whose licenses go, then one confirmation queues the
    unassignments and the reduction, in that order, as one operation sequence."""

    template_name = "licensing/reduce.html"
    permission = Perm.LICENSES_MANAGE

    def _quantity(self, data, subscription) -> int:
        try:
            value = int(data.get("quantity", subscription.quantity))
        except (TypeError, ValueError):
            return subscription.quantity
        return value if 0 < value < subscription.quantity else subscription.quantity

    def get_context_data(self, **kwargs):
        subscription = self.get_subscription()
        quantity = self._quantity(self.request.GET, subscription)
        shortfall = seat_pool_shortfall(subscription=subscription, new_quantity=quantity)
        candidates = (selectors_seats.release_candidates(self.organization, shortfall.pool)
                      if shortfall is not None else [])
        chosen = {str(pk) for pk in well_formed_uuids(self.request.GET.getlist("release"))}
        return super().get_context_data(
            subscription=subscription, quantity=quantity, shortfall=shortfall, candidates=candidates[:1000],
            chosen=chosen, confirm_wipe_scheduled=self.request.GET.get("confirm_wipe_scheduled") == "1", **kwargs,
        )

    def post(self, request, *args, **kwargs):
        subscription = self.get_subscription()
        quantity = self._quantity(request.POST, subscription)
        release = well_formed_uuids(request.POST.getlist("release"))
        try:
            operation = subscription_services.subscription_change_quantity(
                subscription=subscription, actor=actor_of(request), quantity=quantity, release=release,
                confirm_wipe_scheduled=request.POST.get("confirm_wipe_scheduled") == "1", requested_by=request.user,
            )
        except (nce.RuleViolation, ValidationError) as exc:
            messages.error(request, error_text(exc))
            url = reverse("licensing:subscription_reduce", kwargs={"org_slug": self.organization.slug,
                                                                    "pk": subscription.pk})
            query = "&".join([f"quantity={quantity}", *(f"release={pk}" for pk in release)])
            return redirect(f"{url}?{query}")
        messages.success(request, f"Releasing {len(release)} license(s), then reducing to {quantity} seats. "
                                  "The timeline shows each step.")
        return redirect("licensing:operation", org_slug=self.organization.slug, pk=operation.pk)


class CancelSubscription(_SubscriptionAction):
    success_message = "Cancellation sent to Microsoft."

    def act(self, request, subscription):
        return subscription_services.subscription_cancel(subscription=subscription, actor=actor_of(request))


class ToggleAutoRenew(_SubscriptionAction):
    success_message = "Auto-renew change sent to Microsoft."

    def act(self, request, subscription):
        return subscription_services.subscription_set_auto_renew(
            subscription=subscription, actor=actor_of(request), enabled=request.POST.get("enabled") == "1"
        )

    def warn(self, request, subscription):
        if request.POST.get("enabled") != "1":
            warning = subscription_services.seat_warning_at_term_end(subscription=subscription, quantity=0)
            if warning:
                messages.warning(request, warning)


class ScheduleChange(_SubscriptionAction):
    success_message = "Next-term changes sent to Microsoft."

    def act(self, request, subscription):
        if request.POST.get("clear") == "1":
            return subscription_services.subscription_clear_schedule(subscription=subscription,
                                                                     actor=actor_of(request))
        form = ScheduleForm(request.POST)
        if not form.is_valid():
            raise ValidationError("Check the quantity, term and billing frequency.")
        data = form.cleaned_data
        return subscription_services.subscription_schedule_change(
            subscription=subscription, actor=actor_of(request), quantity=data["quantity"],
            term_duration=data["term_duration"], billing_cycle=data["billing_cycle"],
        )

    def warn(self, request, subscription):
        form = ScheduleForm(request.POST)
        if request.POST.get("clear") != "1" and form.is_valid() and form.cleaned_data.get("quantity"):
            warning = subscription_services.seat_warning_at_term_end(subscription=subscription,
                                                                     quantity=form.cleaned_data["quantity"])
            if warning:
                messages.warning(request, warning)


class OperationsPage(OrganizationMixin, TemplateView):
    template_name = "licensing/operations.html"

    def get_context_data(self, **kwargs):
        status = self.request.GET.get("status", "")
        status = status if status in ProvisioningOperation.Status.values else ""
        page = ShortPageCountPaginator(selectors.operations_for(self.organization, status=status), 50).get_page(
            self.request.GET.get("page")
        )
        return super().get_context_data(page_obj=page, status=status,
                                        statuses=ProvisioningOperation.Status.choices, **kwargs)


class OperationPage(OrganizationMixin, TemplateView):
    template_name = "licensing/operation.html"

    def get_context_data(self, **kwargs):
        operation = get_object_or_404(selectors.operations_for(self.organization), pk=self.kwargs["pk"])
        timeline = selectors.operation_timeline(operation) if selectors.has_timeline(operation) else []
        return super().get_context_data(
            operation=operation, timeline=timeline, attempts=operation.attempt_set.all(),
            done_steps=sum(1 for s in timeline if s["done"]), total_steps=len(timeline), **kwargs,
        )
