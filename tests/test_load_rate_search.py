"""The rate search's verdicts (`python -m benchmarks.load --find-rate`): what counts as a rate held."""

from __future__ import annotations

from benchmarks.load import highest_rates, stage_verdict


def stage(done: float, *, errors: float = 0.0, dashboard_p95: float = 100, api_p95: float = 50) -> dict:
    return {"actions_per_second": done, "error_rate": errors, "classes": {
        "dashboard": {"requests": 10, "p95_ms": dashboard_p95}, "api_read": {"requests": 10, "p95_ms": api_p95}}}


def test_a_kept_schedule_without_errors_under_the_targets_meets_them():
    verdict = stage_verdict(10, stage(9.5))
    assert verdict == {"rate": 10, "held": True, "meets_targets": True, "reasons": []}


def test_falling_behind_the_schedule_is_not_held():
    verdict = stage_verdict(10, stage(8.9))
    assert not verdict["held"] and verdict["reasons"] == ["completed 8.9/s of 10/s offered"]
    assert stage_verdict(10, stage(9.0))["held"]  # 90% exactly is kept


def test_any_error_means_not_held():
    verdict = stage_verdict(10, stage(10, errors=0.001))
    assert not verdict["held"] and not verdict["meets_targets"]


def test_a_slow_p95_is_held_but_misses_the_targets_at_each_edge():
    assert stage_verdict(10, stage(10, dashboard_p95=299.9))["meets_targets"]
    slow_page = stage_verdict(10, stage(10, dashboard_p95=300))
    assert slow_page["held"] and not slow_page["meets_targets"]
    assert slow_page["reasons"] == ["dashboard p95 300 ms (target < 300)"]
    assert stage_verdict(10, stage(10, api_p95=149.9))["meets_targets"]
    assert not stage_verdict(10, stage(10, api_p95=150))["meets_targets"]


def test_a_class_the_stage_never_drew_does_not_count_against_it():
    result = stage(10)
    result["classes"]["api_read"] = {"requests": 0, "p95_ms": 0}
    assert stage_verdict(10, result)["meets_targets"]


def test_the_highest_rates_are_read_from_every_stage_not_the_last():
    verdicts = [stage_verdict(2, stage(2)), stage_verdict(4, stage(4, dashboard_p95=400)),
                stage_verdict(8, stage(5)), stage_verdict(6, stage(6))]
    assert highest_rates(verdicts) == {"highest_rate_meeting_targets": 6, "highest_rate_held": 6}
    assert highest_rates([stage_verdict(4, stage(4, dashboard_p95=400))]) == {
        "highest_rate_meeting_targets": None, "highest_rate_held": 4}
    assert highest_rates([]) == {"highest_rate_meeting_targets": None, "highest_rate_held": None}
