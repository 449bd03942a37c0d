"""Usage anomaly detection on synthetic days, each with the outcome it must give."""

from datetime import date, timedelta
from decimal import Decimal

from security.usage_anomalies import DaySummary, anomalies, summarise_rows, vm_family

START = date(2026, 10, 1)


def day(n, spend="20", regions=("eastus",), families=("D2",)):
    return DaySummary("c", "s", START + timedelta(days=n), Decimal(spend), "USD", set(regions), set(families))


def signals(history, today):
    return sorted(a.signal for a in anomalies(history, today))


def test_no_verdict_without_a_weeks_baseline():
    history = [day(n) for n in range(6)]
    assert signals(history, day(6, spend="5000", regions=("westeurope",), families=("NC24",))) == []


def test_spend_spikes_need_both_a_ratio_and_an_absolute_excess():
    history = [day(n, spend=str(10 + n % 2)) for n in range(10)]
    assert signals(history, day(10, spend="40")) == []          # 4x, but only 30 over the baseline
    assert signals(history, day(10, spend="100")) == ["spend_spike"]
    spike = anomalies(history, day(10, spend="1000"))[0]
    assert spike.score == 95 and spike.evidence["baseline"] == "10.50"
    assert anomalies(history, day(10, spend="75"))[0].score == 70  # about 7x: block, not suspend


def test_new_regions_and_sudden_gpu_or_high_core_sizes():
    history = [day(n, families=("D2", "D4")) for n in range(10)]
    assert signals(history, day(10, regions=("eastus", "japaneast"))) == ["new_region"]
    assert signals(history, day(10, families=("D2", "NC24"))) == ["gpu_vm_family"]
    assert signals(history, day(10, families=("D64",))) == ["high_core_vm_family"]
    assert signals(history, day(10, families=("D8",))) == []  # a bigger ordinary size is growth, not fraud
    grown = [*history, day(10, families=("NC24",))]
    assert signals(grown, day(11, families=("NC24",))) == []   # once seen, it is the baseline


def test_vm_sizes_parse():
    assert vm_family("NC24ads A100 v4") == ("NC", 24)
    assert vm_family("Standard_D64s_v5") == ("D", 64)
    assert vm_family("E10 LRS Disk") == ("E", 10) and vm_family("Data Transfer Out") is None


def test_rows_fold_into_days_and_bad_rows_are_skipped():
    rows = [
        {"CustomerId": "c", "SubscriptionId": "s", "UsageDate": "2026-10-01T00:00:00Z", "BillingPreTaxTotal": 1.5,
         "ResourceLocation": "eastus", "MeterCategory": "Virtual Machines", "SkuName": "D2s v5"},
        {"CustomerId": "c", "SubscriptionId": "s", "UsageDate": "2026-10-01T00:00:00Z", "BillingPreTaxTotal": "2.25",
         "MeterRegion": "US East", "MeterCategory": "Storage", "SkuName": "E10 LRS Disk"},
        {"CustomerId": "c", "SubscriptionId": "s", "UsageDate": "not a date", "BillingPreTaxTotal": 1},
        {"CustomerId": "c", "SubscriptionId": "s", "UsageDate": "2026-10-01", "BillingPreTaxTotal": "NaN?"},
        {"SubscriptionId": "s", "UsageDate": "2026-10-01", "BillingPreTaxTotal": 1},
    ]
    (summary,) = summarise_rows(rows).values()
    assert summary.spend == Decimal("3.75") and summary.regions == {"eastus", "us east"}
    assert summary.vm_families == {"D2"}
