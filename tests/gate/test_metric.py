"""The one regression rule, on chosen samples. Pure."""

from __future__ import annotations

import pytest

from modelexport.gate.metric import Metric, Rule, judge

RULE = Rule(threshold=0.10, alpha=0.01, floor=0.05)
STEADY = (1.00, 1.02, 0.99, 1.01, 1.03)


def seconds(*samples: float) -> Metric:
    return Metric("time", "s", samples)


def test_slower_beyond_threshold_noise_and_floor_is_worse_and_says_so() -> None:
    change = judge(seconds(1.21, 1.19, 1.25, 1.22, 1.20), seconds(*STEADY), RULE)
    assert change.direction == "worse"
    assert change.p_value == pytest.approx(1 / 252)
    assert change.reason() == "time +19.8 % (1.010 s -> 1.210 s)"


@pytest.mark.parametrize(("now", "why"), [
    ((1.02, 1.25, 0.97, 1.12, 1.08), "interleaved samples: noise"),
    ((1.05, 1.06, 1.04, 1.05, 1.07), "+4 %: under the threshold"),
])
def test_a_move_the_rule_does_not_count_is_the_same(now: tuple[float, ...], why: str) -> None:
    assert judge(seconds(*now), seconds(*STEADY), RULE).direction == "same", why


def test_the_floor_is_in_the_metrics_own_unit() -> None:
    fast, slow = (0.010, 0.0102, 0.0099, 0.0101, 0.0103), (0.013, 0.0131, 0.0132, 0.0133)
    assert judge(seconds(*slow), seconds(*fast), RULE).direction == "same"  # 3 ms < 50 ms
    assert judge(seconds(*slow), seconds(*fast), Rule(0.10, 0.01, 0.0)).direction == "worse"


def test_faster_is_the_rule_mirrored() -> None:
    assert judge(seconds(0.8, 0.81, 0.79, 0.8, 0.82), seconds(*STEADY), RULE).direction \
        == "better"


def test_where_higher_is_better_a_drop_is_worse() -> None:
    def throughput(*samples: float) -> Metric:
        return Metric("throughput", "runs/s", samples, better="higher")

    before = throughput(100, 101, 99, 100, 102)
    assert judge(throughput(80, 81, 79, 80, 82), before, Rule(0.1, 0.01, 1)).direction \
        == "worse"
    assert judge(throughput(130, 131, 129, 130, 132), before, Rule(0.1, 0.01, 1)).direction \
        == "better"


def test_only_a_metric_of_the_same_name_and_unit_is_judged_against_another() -> None:
    with pytest.raises(ValueError, match="cannot be judged against"):
        judge(Metric("inference", "ms", STEADY), seconds(*STEADY), RULE)


def test_paired_the_rule_holds_of_the_pairs_and_the_reason_gives_the_interval() -> None:
    load = (1.0, 1.0, 1.5, 1.5, 1.0, 1.0, 1.4, 1.4, 1.0, 1.0)
    base = seconds(*load)
    head = seconds(*(x * 1.2 for x in load))
    change = judge(head, base, RULE, paired=True)
    assert change.direction == "worse" and change.paired
    assert change.ratio == pytest.approx(1.2)
    assert change.reason() == "time +20.0 % (95 %: +20.0..+20.0 %; 1.000 s -> 1.200 s, paired)"
    # Unpaired, a 20 % slowdown hides in the load that came and went.
    assert judge(head, base, RULE).direction == "same"


def test_paired_a_slower_base_is_better_and_the_floor_holds_of_the_differences() -> None:
    base = seconds(1.2, 1.3, 1.25, 1.2, 1.22, 1.21)
    head = seconds(1.0, 1.1, 1.04, 1.0, 1.02, 1.0)
    assert judge(head, base, RULE, paired=True).direction == "better"
    tiny_base = seconds(0.010, 0.011, 0.010, 0.011, 0.010, 0.011)
    tiny_head = seconds(0.013, 0.014, 0.013, 0.014, 0.013, 0.014)
    assert judge(tiny_head, tiny_base, RULE, paired=True).direction == "same"  # 3 ms < 50 ms
