"""Usage snapshots and reports, the renewal calendar, reminders (idempotent) and announcements."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

import licensing.tasks_directory  # noqa: F401 - registers the tasks the services enqueue by name
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing.models import (
    DirectoryUser,
    LicenseAssignment,
    Notification,
    ServiceAnnouncement,
    Subscription,
    TenantSku,
    UsageSnapshot,
)
from licensing.selectors import usage as selectors_usage
from licensing.services import notifications as notification_services
from licensing.services import usage as usage_services

from .directory_helpers import SYSTEM

pytestmark = pytest.mark.django_db

SKU = uuid.UUID("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46")


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def people(org):
    return {role: MembershipFactory(organization=org, role=role).user for role in Role.values}


def make_pool(org, purchased=10, assigned=4, inactive=2):
    with tenant_context(org):
        pool = TenantSku.objects.create(organization=org, sku_id=SKU, sku_part_number="SPB", display_name="Premium",
                                        purchased=purchased)
        old = timezone.now() - timedelta(days=120)
        for n in range(assigned):
            user = DirectoryUser(organization=org, graph_id=uuid.uuid4(), user_principal_name=f"u{n}@x.example",
                                 display_name=f"U{n}", usage_location="US", has_usage_location=True,
                                 last_sign_in_at=old if n < inactive else timezone.now())
            user.save()
            DirectoryUser.objects.for_org(org).filter(pk=user.pk).update(created_at=old)
            LicenseAssignment.objects.create(organization=org, user=user, sku=pool, state="assigned")
    return pool


def make_subscription(org, *, days_left=30, auto_renew=True, quantity=10, price="22.00", cycle="monthly",
                      term="P1Y", currency="USD"):
    from licensing.models import Product, Sku

    product, _ = Product.objects.get_or_create(product_id="CFQ7TTC0LCHC", defaults={"title": "Business Premium",
                                                                                     "family": "m365"})
    sku, _ = Sku.objects.get_or_create(product=product, sku_id="0002", defaults={
        "title": "Business Premium", "provisioning_id": str(SKU)})
    end = (timezone.now() + timedelta(days=days_left)).replace(hour=23, minute=59, second=59, microsecond=0)
    with tenant_context(org):
        return Subscription.objects.create(
            organization=org, sku=sku, catalog_item_id="CFQ7TTC0LCHC:0002:x", product_title="Business Premium",
            status="active", quantity=quantity, term_duration=term, billing_cycle=cycle, auto_renew=auto_renew,
            unit_price=Decimal(price), currency=currency, start_date=end - timedelta(days=364), commitment_end=end,
        )


def test_snapshot_and_unassigned_cost(org):
    pool = make_pool(org)
    make_subscription(org)
    with tenant_context(org):
        assert usage_services.usage_snapshot_take(organization=org) == 1
        assert usage_services.usage_snapshot_take(organization=org) == 1  # same day: overwritten, not doubled
        snap = UsageSnapshot.objects.for_org(org).get()
        rows = selectors_usage.pool_rows(org)
        by_sub = selectors_usage.assigned_seats_by_subscription(org)
    assert (snap.purchased, snap.assigned, snap.available) == (10, 4, 6)
    assert snap.unit_price_monthly == Decimal("22.00")
    assert rows[0].unassigned_cost_monthly == Decimal("132.00")
    assert list(by_sub.values()) == [4]
    assert pool.pk == rows[0].sku.pk


def test_a_sku_bought_in_two_currencies_is_priced_in_one_never_averaged_across_them(org):
    make_pool(org)
    make_subscription(org, quantity=3, price="20.00", currency="EUR")
    make_subscription(org, quantity=6, price="30.00", currency="USD")
    make_subscription(org, quantity=2, price="24.00", currency="USD")
    with tenant_context(org):
        prices = selectors_usage.monthly_unit_prices(org)
    # USD holds 8 of the 11 seats: (6 x 30 + 2 x 24) / 8, without the EUR subscription's 20.00.
    assert prices[str(SKU)] == (Decimal("28.50"), "USD")


def test_inactive_users_and_reclaim_preview(org):
    make_pool(org)
    with tenant_context(org):
        inactive = list(selectors_usage.inactive_assignments(org))
    assert len(inactive) == 2


def test_renewal_calendar_lists_monthly_renewals_and_expiry(org):
    make_subscription(org, days_left=20, term="P1M", price="10.00")
    make_subscription(org, days_left=40, auto_renew=False)
    with tenant_context(org):
        entries = selectors_usage.renewal_calendar(org)
        months = selectors_usage.calendar_months(entries)
    monthly = [e for e in entries if e.subscription.term_duration == "P1M"]
    assert 11 <= len(monthly) <= 13
    expiring = [e for e in entries if not e.auto_renew]
    assert len(expiring) == 1 and expiring[0].projected_cost == Decimal("0.00")
    first = monthly[0]
    assert first.last_day_to_reduce < first.renews_on <= first.window_closes_on
    assert len(months) == 13


def test_renewal_reminders_are_sent_once_per_offset_and_term(org, people, django_capture_on_commit_callbacks):
    make_subscription(org, days_left=7)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org):
        sent = notification_services.reminders_run(organization=org)
        again = notification_services.reminders_run(organization=org)
    # Owner, license admin and billing admin; the viewer is not bothered.
    assert sent == 3
    assert again == 0
    assert len(mail.outbox) == 3
    with tenant_context(org):
        keys = set(Notification.objects.for_org(org).values_list("dedupe_key", flat=True))
    assert len(keys) == 1 and keys.pop().endswith(":7")


def test_expiring_and_window_closing_notices(org, people):
    sub = make_subscription(org, days_left=10, auto_renew=False)
    with tenant_context(org):
        Subscription.objects.for_org(org).filter(pk=sub.pk).update(
            cancellation_allowed_until=timezone.now() + timedelta(hours=20)
        )
        notification_services.reminders_run(organization=org)
        kinds = set(Notification.objects.for_org(org).values_list("kind", flat=True))
    assert kinds == {Notification.Kind.LICENSES_EXPIRING, Notification.Kind.CANCELLATION_WINDOW}


def test_provisioning_failure_hook_notifies_license_people(org, people):
    from licensing.models import ProvisioningOperation

    with tenant_context(org):
        operation = ProvisioningOperation.objects.create(organization=org, kind="order.checkout", status="failed",
                                                         failure_reason="Card declined", attempts=3)
        notes = notification_services.notify_provisioning_failed(operation)
        again = notification_services.notify_provisioning_failed(operation)
    assert {n.recipient_id for n in notes} == {people[Role.OWNER].pk, people[Role.LICENSE_ADMIN].pk}
    assert again == []


def test_preferences_validate_and_change_reminders(org):
    from django.core.exceptions import ValidationError

    from core.audit import AuditEvent
    from licensing.selectors import licensing_settings
    from licensing.services.settings import licensing_settings_update

    with tenant_context(org):
        with pytest.raises(ValidationError):
            licensing_settings_update(organization=org, actor=SYSTEM, changes={
                "inactive_days": 0, "reminder_offsets": [7], "email_notifications": True})
        licensing_settings_update(organization=org, actor=SYSTEM, changes={
            "inactive_days": 45, "reminder_offsets": [1, 14, 14], "email_notifications": False})
        prefs = licensing_settings(org)
        event = AuditEvent.objects.filter(action="licensing_settings.updated").latest("pk")
    assert prefs.reminder_offsets == [14, 1] and prefs.inactive_days == 45 and not prefs.email_notifications
    assert event.metadata["inactive_days"] == {"from": 30, "to": 45}


def test_announcements_target_all_or_some(org):
    other = OrganizationFactory()
    staff = MembershipFactory(organization=other).user
    everyone = ServiceAnnouncement.objects.create(title="Maintenance", body="Tonight", all_organizations=True)
    targeted = ServiceAnnouncement.objects.create(title="Outage", body="EU", all_organizations=False)
    targeted.organizations.add(other)
    from core.audit import Actor

    for a in (everyone, targeted):
        notification_services.announcement_publish(announcement=a, actor=Actor.staff(staff))
    assert list(ServiceAnnouncement.objects.visible_to(org)) == [everyone] or set(
        ServiceAnnouncement.objects.visible_to(org)) == {everyone}
    assert set(ServiceAnnouncement.objects.visible_to(other)) == {everyone, targeted}
    notification_services.announcement_withdraw(announcement=everyone, actor=Actor.staff(staff))
    assert set(ServiceAnnouncement.objects.visible_to(org)) == set()


@pytest.mark.parametrize("graph_knows", [True, False])
def test_a_suspended_subscription_shows_as_purchased_and_suspended_on_every_page(org, people, client, graph_knows):
    """The Subscriptions page says "0 / 5, Suspended"; the Licenses and Usage pages say 5 purchased, suspended,
    0 usable, whether or not the directory sync has already seen the suspension."""
    pool = make_pool(org, purchased=0 if graph_knows else 5, assigned=0)
    sub = make_subscription(org, quantity=5)
    with tenant_context(org):
        Subscription.objects.for_org(org).filter(pk=sub.pk).update(status=Subscription.Status.SUSPENDED)
        if graph_knows:
            TenantSku.objects.for_org(org).filter(pk=pool.pk).update(suspended=5)
        row = selectors_usage.pool_rows(org)[0]
    assert (row.purchased, row.suspended, row.usable, row.available, row.state) == (5, 5, 0, 0, "suspended")
    browser = verified_client(client, people["owner"])
    licenses = browser.get(reverse("licensing:licenses", kwargs={"org_slug": org.slug})).content.decode()
    assert '<td class="num">5 ' in licenses and "Suspended" in licenses and "0 usable" in licenses
    subscriptions = browser.get(reverse("licensing:subscriptions", kwargs={"org_slug": org.slug})).content.decode()
    assert "0 / 5" in subscriptions and "Suspended" in subscriptions


def test_usage_history_is_one_series_per_license_by_name_over_the_window(org):
    today = timezone.now().date()
    with tenant_context(org):
        named = TenantSku.objects.create(organization=org, sku_id=SKU, sku_part_number="SPB", display_name="Premium",
                                         purchased=10)
        unnamed = TenantSku.objects.create(organization=org, sku_id=uuid.uuid4(), sku_part_number="AAD_P1",
                                           display_name="", purchased=5)
        for days_ago, assigned in ((2, 4), (1, 6), (40, 1)):  # 40 days ago is outside a 30-day window
            UsageSnapshot.objects.create(organization=org, sku=named, day=today - timedelta(days=days_ago),
                                         purchased=10, assigned=assigned, available=10 - assigned)
        UsageSnapshot.objects.create(organization=org, sku=unnamed, day=today, purchased=5, assigned=5, available=0)
        history = selectors_usage.usage_history(org, days=30, today=today)
    assert [(h["tenant_sku_id"], h["label"]) for h in history] == [(unnamed.pk, "AAD_P1"), (named.pk, "Premium")]
    assert history[1]["points"] == [((today - timedelta(days=2)).isoformat(), 4),
                                     ((today - timedelta(days=1)).isoformat(), 6)]
    assert history[1]["purchased"] == [((today - timedelta(days=2)).isoformat(), 10),
                                        ((today - timedelta(days=1)).isoformat(), 10)]
    assert history[0]["points"] == [(today.isoformat(), 5)]


def test_the_overview_counts_reclaimable_licenses_per_product_and_prices_them_by_the_subscription(org):
    # Counted per SKU in the database: three idle Business Premium seats at 22.00 a month each, and two idle
    # seats of a license with no subscription to price it (counted, not costed).
    from licensing.selectors.overview import license_overview

    make_pool(org, purchased=10, assigned=5, inactive=3)
    make_subscription(org)
    old = timezone.now() - timedelta(days=120)
    with tenant_context(org):
        unpriced = TenantSku.objects.create(organization=org, sku_id=uuid.uuid4(), sku_part_number="VISIO",
                                            display_name="Visio", purchased=5)
        for n in range(2):
            user = DirectoryUser(organization=org, graph_id=uuid.uuid4(), user_principal_name=f"v{n}@x.example",
                                 display_name=f"V{n}", last_sign_in_at=old)
            user.save()
            LicenseAssignment.objects.create(organization=org, user=user, sku=unpriced, state="assigned")
        overview = license_overview(org)
    assert overview.reclaimable == 5
    assert overview.reclaimable_cost == {"USD": Decimal("66.00")}
