"""The gate's statistics on synthetic samples; scipy is the independent reference."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from scipy.stats import mannwhitneyu, quantile_test, wilcoxon

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


@pytest.mark.parametrize("seed", range(20))
def test_signed_rank_p_matches_scipy_exact(seed: int) -> None:
    rng = random.Random(seed)
    differences = [rng.gauss(0.02 * rng.random(), 0.05) for _ in range(rng.randint(1, 16))]
    ref = wilcoxon(differences, alternative="greater", method="exact").pvalue
    assert stats.p_signed_rank(differences) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_signed_rank_p_with_ties_and_zeros_counts_every_sign_assignment(seed: int) -> None:
    rng = random.Random(seed)
    differences = [round(rng.gauss(0.01, 0.03), 2) for _ in range(rng.randint(2, 12))]
    nonzero = [d for d in differences if d != 0]
    ranks = {}  # mean ranks, by hand
    ordered = sorted(abs(d) for d in nonzero)
    for value in ordered:
        places = [i + 1 for i, v in enumerate(ordered) if v == value]
        ranks[value] = sum(places) / len(places)
    observed = sum(ranks[abs(d)] for d in nonzero if d > 0)
    reached = sum(1 for signs in itertools.product((1, -1), repeat=len(nonzero))
                  if sum(ranks[abs(d)] for d, s in zip(nonzero, signs, strict=True) if s > 0)
                  >= observed)
    expected = reached / 2 ** len(nonzero) if nonzero else 1.0
    assert stats.p_signed_rank(differences) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(10))
def test_signed_rank_p_of_many_pairs_matches_scipys_normal_approximation(seed: int) -> None:
    rng = random.Random(seed)
    differences = [rng.gauss(0.01, 0.05) for _ in range(rng.randint(61, 300))]
    if sum(differences) < 0:  # above the mean, where the corrections agree
        differences = [-d for d in differences]
    ref = wilcoxon(differences, alternative="greater", method="approx",
                   correction=True).pvalue
    assert stats.p_signed_rank(differences) == pytest.approx(ref, rel=1e-6)


def test_a_drift_that_hits_both_sides_of_every_pair_is_not_significant() -> None:
    # A load that comes and goes: pairs 3-6 ran 60 % slower, both members alike.
    base = [1.00, 1.01, 1.60, 1.62, 1.59, 1.61, 0.99, 1.02]
    head = [1.01, 1.00, 1.61, 1.60, 1.60, 1.62, 1.00, 1.01]
    paired = stats.paired_greater(head, base, alpha=0.01)
    assert paired.ratio == pytest.approx(1.0, abs=0.01)
    assert not paired.significant
    # The same samples taken apart from each other say nothing either way.
    assert not stats.greater(head, base, alpha=0.01).significant


def test_a_constant_five_percent_on_one_side_is_significant_under_drift() -> None:
    load = [1.0, 1.0, 1.6, 1.6, 1.6, 1.6, 1.0, 1.0, 1.3, 1.3]
    noise = [0.004, -0.003, 0.002, -0.001, 0.003, -0.002, 0.001, -0.004, 0.002, 0.0]
    base = [x * (1 + e) for x, e in zip(load, noise, strict=True)]
    head = [x * 1.05 * (1 - e) for x, e in zip(load, noise, strict=True)]
    paired = stats.paired_greater(head, base, alpha=0.01)
    assert paired.ratio == pytest.approx(1.05, abs=0.01)
    assert paired.p_value == pytest.approx(1 / 2 ** 10)
    assert paired.significant
    # Unpaired, the load hides it.
    assert not stats.greater(head, base, alpha=0.01).significant


def test_too_few_pairs_count_only_when_larger_in_every_pair() -> None:
    assert stats.paired_greater([1.1, 1.2, 1.1, 1.3], [1.0, 1.0, 1.0, 1.0], 0.05).p_value \
        is None
    assert stats.paired_greater([1.1, 1.2, 1.1, 1.3], [1.0, 1.0, 1.0, 1.0], 0.05).significant
    assert not stats.paired_greater([1.1, 0.9, 1.1, 1.3], [1.0, 1.0, 1.0, 1.0], 0.05
                                    ).significant


def test_the_paired_ratio_has_an_interval_from_six_pairs() -> None:
    base = [1.0] * 10
    head = [1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08, 1.09, 1.10]
    assert stats.ratio_interval(head, base) == pytest.approx((1.02, 1.09))
    assert stats.ratio_interval(head[:5], base[:5]) is None
