"""Statistics on samples (seconds, milliseconds, bytes): pure functions, no numpy, no scipy.

The gate asks one question per metric: are these samples larger than those, beyond noise?
Two samples taken apart (a run against a stored baseline): a one-sided Mann-Whitney U test
answers it without assuming normal timings; exact for the small sample counts a gate uses,
normal-approximated (with tie correction) above them. Samples taken in pairs, side by side
(the base and the head of a pull request, alternated): a one-sided Wilcoxon signed-rank test
on the log ratios of the pairs, so that whatever slowed both members of a pair cancels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import cache
from statistics import median
from typing import NamedTuple

EXACT_LIMIT = 400  # m * n above which the normal approximation is used
SIGNED_RANK_EXACT = 60  # pairs above which the signed-rank test is normal-approximated


class Comparison(NamedTuple):
    ratio: float  # median(a) / median(b)
    delta: float  # median(a) - median(b), in the samples' unit
    p_value: float | None  # of "a is larger"; None: too few samples for the test to reach alpha
    significant: bool  # a larger beyond noise, by the test or (too few samples) by range


def u_statistic(current: Sequence[float], baseline: Sequence[float]) -> float:
    """Pairs where current is larger (ties count one half)."""
    return sum(1.0 if c > b else 0.5 if c == b else 0.0 for c in current for b in baseline)


@cache
def _counts(m: int, n: int) -> tuple[int, ...]:
    """Number of rank arrangements giving U = 0..m*n, for samples of size m and n."""
    if m == 0 or n == 0:
        return (1,)
    with_top_in_first = _counts(m - 1, n)  # the largest value is from the first sample: U += n
    with_top_in_second = _counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, ways in enumerate(with_top_in_second):
        out[u] += ways
    for u, ways in enumerate(with_top_in_first):
        out[u + n] += ways
    return tuple(out)


def p_greater(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided p-value of "current tends to be larger than baseline"."""
    m, n = len(current), len(baseline)
    if not m or not n:
        raise ValueError("both samples need at least one value")
    u = u_statistic(current, baseline)
    values = [*current, *baseline]
    tied = len(set(values)) != len(values)
    if m * n <= EXACT_LIMIT and not tied:
        counts = _counts(m, n)
        return sum(counts[math.ceil(u):]) / math.comb(m + n, m)
    return _normal_p(u, m, n, values)


def _normal_p(u: float, m: int, n: int, values: list[float]) -> float:
    total = m + n
    tie_term = sum(t**3 - t for t in _tie_sizes(values)) / (total * (total - 1))
    variance = m * n / 12 * ((total + 1) - tie_term)
    if variance == 0:
        return 1.0
    z = (u - m * n / 2 - 0.5) / math.sqrt(variance)  # continuity correction
    return 0.5 * math.erfc(z / math.sqrt(2))


def _tie_sizes(values: list[float]) -> list[int]:
    sizes: dict[float, int] = {}
    for v in values:
        sizes[v] = sizes.get(v, 0) + 1
    return [s for s in sizes.values() if s > 1]


def smallest_p(m: int, n: int) -> float:
    """The smallest one-sided p-value samples of these sizes can give."""
    return 1 / math.comb(m + n, m)


def greater(a: Sequence[float], b: Sequence[float], alpha: float) -> Comparison:
    """Ratio of the medians, and whether ``a`` is larger than ``b`` beyond noise.

    With too few samples for the test to reach ``alpha`` (e.g. 3 against 3: p >= 0.05),
    ``a`` counts as significantly larger only when the ranges do not overlap at all.
    """
    above, below = median(a), median(b)
    ratio = above / below if below > 0 else math.inf
    if smallest_p(len(a), len(b)) > alpha:
        return Comparison(ratio, above - below, None, min(a) > max(b))
    p = p_greater(a, b)
    return Comparison(ratio, above - below, p, p < alpha)


def p_signed_rank(differences: Sequence[float]) -> float:
    """One-sided p-value of "these paired differences tend to be positive" (Wilcoxon
    signed-rank, zeros dropped, tied magnitudes at their mean rank): exact up to
    SIGNED_RANK_EXACT pairs, by counting the sign assignments whose positive rank sum
    reaches the observed one; above, normal-approximated with tie and continuity
    corrections."""
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    ranks = _mean_ranks([abs(d) for d in nonzero])
    if len(nonzero) > SIGNED_RANK_EXACT:
        return _normal_signed_rank(nonzero, ranks)
    # Mean ranks are whole or halves: doubled, they count exactly as integers.
    doubled = [round(2 * r) for r in ranks]
    observed = sum(r for r, d in zip(doubled, nonzero, strict=True) if d > 0)
    ways = {0: 1}
    for rank in doubled:
        grown = dict(ways)
        for total, count in ways.items():
            grown[total + rank] = grown.get(total + rank, 0) + count
        ways = grown
    return sum(count for total, count in ways.items() if total >= observed) / 2 ** len(nonzero)


def _normal_signed_rank(nonzero: list[float], ranks: list[float]) -> float:
    n = len(nonzero)
    observed = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    ties = sum(t**3 - t for t in _tie_sizes([abs(d) for d in nonzero]))
    variance = n * (n + 1) * (2 * n + 1) / 24 - ties / 48
    if variance == 0:
        return 1.0
    z = (observed - n * (n + 1) / 4 - 0.5) / math.sqrt(variance)  # continuity correction
    return 0.5 * math.erfc(z / math.sqrt(2))


def _mean_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for index in order[start:end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def paired_greater(a: Sequence[float], b: Sequence[float], alpha: float) -> Comparison:
    """Whether ``a`` is larger than ``b`` beyond noise, where ``a[i]`` and ``b[i]`` were
    measured side by side: the median of the ratios ``a[i] / b[i]``, the median of the
    differences (for a floor in the samples' unit), and the signed-rank test of the log
    ratios. With too few pairs for the test to reach ``alpha`` (4 pairs: p >= 1/16), ``a``
    counts as larger only when it is larger in every pair."""
    pairs = _positive_pairs(a, b)
    if not pairs:
        raise ValueError("paired samples need at least one pair of positive values")
    ratio = median(x / y for x, y in pairs)
    delta = median(x - y for x, y in pairs)
    if 0.5 ** len(pairs) > alpha:
        return Comparison(ratio, delta, None, all(x > y for x, y in pairs))
    p = p_signed_rank([math.log(x / y) for x, y in pairs])
    return Comparison(ratio, delta, p, p < alpha)


def ratio_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95
                   ) -> tuple[float, float] | None:
    """A distribution-free interval for the median of the paired ratios ``a[i] / b[i]``
    (``median_interval``); None for too few pairs (fewer than 6 at 95 %)."""
    return median_interval([x / y for x, y in _positive_pairs(a, b)], confidence)


def _positive_pairs(a: Sequence[float], b: Sequence[float]) -> list[tuple[float, float]]:
    """The pairs a ratio can be taken of (a sample of zero has none)."""
    return [(x, y) for x, y in zip(a, b, strict=False) if x > 0 and y > 0]


def block_means(values: Sequence[float], blocks: int = 10) -> list[float]:
    """The means of ``blocks`` consecutive, near-equal slices of ``values`` (each value its
    own block when there are fewer).

    For latencies of runs a few milliseconds long: a run fits between the time slices of a
    process sharing its core, so the median of single runs does not see a machine slowed by
    half, while the mean of a block of runs does (measured in docs/profile.md, "The
    inference verdict")."""
    count = min(blocks, len(values))
    if count == 0:
        return []
    bounds = [len(values) * i // count for i in range(count + 1)]
    return [sum(values[a:b]) / (b - a) for a, b in itertools.pairwise(bounds)]


def median_interval(values: Sequence[float], confidence: float = 0.95
                    ) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median, or None for too few values.

    The interval runs between two order statistics, chosen so that the chance of the true
    median lying below the lower one (a binomial tail, p = 1/2) is at most (1 - confidence) / 2.
    The benchmark uses it to say whether a measured ratio is settled or still noise.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail = 0.0
    below = 0  # how many order statistics can be dropped from each end
    while below < n // 2:
        tail += math.comb(n, below) / 2**n
        if tail > (1 - confidence) / 2:
            break
        below += 1
    if below == 0:
        return None
    return ordered[below - 1], ordered[n - below]
