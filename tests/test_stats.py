"""The gate's statistics on synthetic samples; scipy is the independent reference."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import mannwhitneyu, quantile_test

from modelexport import stats


@pytest.mark.parametrize("seed", range(20))
def test_exact_p_matches_scipy(seed: int) -> None:
    rng = random.Random(seed)
    m, n = rng.randint(1, 12), rng.randint(1, 12)
    current = [rng.gauss(1.0 + rng.random() * 0.3, 0.1) for _ in range(m)]
    baseline = [rng.gauss(1.0, 0.1) for _ in range(n)]
    ref = mannwhitneyu(current, baseline, alternative="greater", method="exact").pvalue
    assert stats.p_greater(current, baseline) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_ties_and_large_samples_use_the_corrected_normal_approximation(seed: int) -> None:
    rng = random.Random(seed)
    current = [round(rng.gauss(1.05, 0.1), 2) for _ in range(rng.randint(5, 40))]
    baseline = [round(rng.gauss(1.0, 0.1), 2) for _ in range(rng.randint(5, 40))]
    ref = mannwhitneyu(current, baseline, alternative="greater", method="asymptotic",
                       use_continuity=True).pvalue
    assert stats.p_greater(current, baseline) == pytest.approx(ref, rel=1e-6)


def test_known_regression_is_significant() -> None:
    baseline = [1.00, 1.02, 0.99, 1.01, 1.03]
    current = [1.21, 1.19, 1.25, 1.22, 1.20]
    result = stats.greater(current, baseline, alpha=0.01)
    assert result.ratio == pytest.approx(1.21 / 1.01)
    assert result.p_value == pytest.approx(1 / 252)
    assert result.significant


def test_noisy_unchanged_is_not_significant() -> None:
    baseline = [1.00, 1.30, 0.95, 1.10, 1.05]
    current = [1.02, 1.25, 0.97, 1.12, 1.08]
    result = stats.greater(current, baseline, alpha=0.01)
    assert result.p_value > 0.01
    assert not result.significant


def test_too_few_samples_fall_back_to_non_overlapping_ranges() -> None:
    assert stats.smallest_p(3, 3) == pytest.approx(0.05)
    apart = stats.greater([1.3, 1.4, 1.35], [1.0, 1.1, 1.05], alpha=0.01)
    assert apart.p_value is None and apart.significant
    overlapping = stats.greater([1.3, 1.04, 1.35], [1.0, 1.1, 1.05], alpha=0.01)
    assert overlapping.p_value is None and not overlapping.significant


def test_delta_is_in_seconds_for_the_floor() -> None:
    result = stats.greater([0.012, 0.013, 0.0125], [0.010, 0.0101, 0.0102], alpha=0.1)
    assert result.delta == pytest.approx(0.0024)


@pytest.mark.parametrize("n", [1, 5, 6, 9, 15, 16, 31, 41, 100])
def test_median_interval_matches_scipy_quantile_test(n: int) -> None:
    values = random.Random(n).sample(range(1000), n)
    ref = quantile_test(values, q=500, p=0.5).confidence_interval(0.95)
    got = stats.median_interval(values, 0.95)
    if math.isnan(ref.low):
        assert got is None
    else:
        assert got == (ref.low, ref.high)


def test_block_means_cover_every_value_once() -> None:
    assert stats.block_means([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], blocks=3) == [1.5, 3.5, 5.5]
    # 7 values in 3 blocks: sizes 2, 2, 3; no value dropped.
    assert stats.block_means([1.0] * 6 + [8.0], blocks=3) == [1.0, 1.0, pytest.approx(10 / 3)]
    assert stats.block_means([4.0, 2.0], blocks=10) == [4.0, 2.0]
    assert stats.block_means([], blocks=10) == []
