"""The API's model serializer reads plain columns directly: its output must be exactly DRF's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework import serializers

from core.api.serializers import ModelSerializer
from licensing.api.core import SubscriptionSerializer
from licensing.api.directory import DirectoryUserSerializer
from licensing.models import Subscription
from licensing.tests.core.factories import DirectoryUserFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


class EveryKindOfField(ModelSerializer):
    """Columns of each type, a relation, a dotted source, a method, a property and the whole object."""

    sku_title = serializers.CharField(source="sku.title")
    organization_slug = serializers.SlugRelatedField(source="organization", slug_field="slug", read_only=True)
    doubled = serializers.SerializerMethodField()
    whole = serializers.SerializerMethodField()
    term_ends_on = serializers.DateField(read_only=True, allow_null=True)
    the_status = serializers.CharField(source="status")

    class Meta:
        model = Subscription
        fields = ["id", "organization", "sku", "sku_title", "organization_slug", "ms_subscription_id", "status",
                  "the_status", "quantity", "auto_renew", "unit_price", "start_date", "commitment_end",
                  "scheduled_next_term", "suspension_reason", "suspended_at", "friendly_name", "doubled", "whole",
                  "term_ends_on", "created_at"]

    def get_doubled(self, obj) -> int:
        return obj.quantity * 2

    def get_whole(self, obj) -> str:
        return obj.product_title


def drf_representation(serializer: serializers.ModelSerializer, instance) -> dict:
    return serializers.ModelSerializer.to_representation(serializer, instance)


def test_every_kind_of_field_reads_as_drf_does():
    subscription = SubscriptionFactory(
        unit_price=Decimal("10.08"), auto_renew=False, friendly_name="Sales team",
        scheduled_next_term={"quantity": 4}, suspended_at=None,
    )
    subscription.refresh_from_db()
    serializer = EveryKindOfField(subscription)

    ours = serializer.data
    assert ours == drf_representation(EveryKindOfField(), subscription)
    # The plain columns really took the direct path, and came out formatted by their own fields.
    plan = {field.field_name: column for field, column in EveryKindOfField()._read_plan()}
    assert plan["quantity"] == "quantity" and plan["the_status"] == "status"
    assert plan["sku"] is None and plan["sku_title"] is None and plan["doubled"] is None
    assert ours["unit_price"] == "10.08" and ours["auto_renew"] is False
    assert ours["id"] == str(subscription.pk) and ours["sku"] == subscription.sku_id
    assert ours["suspended_at"] is None and ours["scheduled_next_term"] == {"quantity": 4}
    assert ours["created_at"].endswith("Z") and ours["doubled"] == 20


def test_a_list_reads_each_row_as_drf_does():
    first = SubscriptionFactory(quantity=3)
    SubscriptionFactory(organization=first.organization, quantity=7,
                        start_date=first.start_date - timedelta(days=40))
    rows = list(Subscription.objects.for_org(first.organization).order_by("quantity"))

    ours = EveryKindOfField(rows, many=True).data
    assert [dict(row) for row in ours] == [drf_representation(EveryKindOfField(), row) for row in rows]
    assert [row["quantity"] for row in ours] == [3, 7]


@pytest.mark.parametrize("serializer_class, make", [
    (SubscriptionSerializer, lambda: SubscriptionFactory()),
    (DirectoryUserSerializer, lambda: DirectoryUserFactory(job_title="Analyst")),
])
def test_the_apis_serializers_answer_as_drf_does(serializer_class, make):
    instance = make()
    instance.refresh_from_db()
    context = {"assigned": {}}
    ours = serializer_class(instance, context=context).data
    assert ours == drf_representation(serializer_class(context=context), instance)


def test_fields_are_worked_out_once_per_class_and_each_instance_has_its_own():
    subscription = SubscriptionFactory(unit_price=Decimal("3.50"), friendly_name="Ops")
    subscription.refresh_from_db()
    first, second = EveryKindOfField(subscription), EveryKindOfField(subscription, context={"assigned": {}})
    assert first.data == second.data == drf_representation(EveryKindOfField(), subscription)
    assert list(first.fields) == list(serializers.ModelSerializer.get_fields(EveryKindOfField()))
    for name, field in first.fields.items():
        assert field is not second.fields[name] and field.parent is first and second.fields[name].parent is second
        assert repr(field) == repr(serializers.ModelSerializer.get_fields(EveryKindOfField())[name])
    assert "_fields_built_once" not in ModelSerializer.__dict__  # a subclass keeps its fields to itself
