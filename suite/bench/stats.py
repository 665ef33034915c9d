"""The statistics regressions are judged by: medians, interquartile ranges, Mann-Whitney U.

Medians and quartiles ignore the bursts a shared machine adds to some rounds; means and standard
deviations do not (pytest-benchmark's FAQ, and `suite.measure.throughput` for the same reason).
A rank test on the rounds (as asv does) tells a shift of the whole distribution from a median that
moved by chance, whatever the noise level, so an unchanged benchmark is flagged with probability
below its significance level however noisy the machine.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    median: float
    iqr: float
    n: int  # samples (rounds)

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("no samples")
        median = statistics.median(samples)
        if len(samples) == 1:
            return cls(median, 0.0, 1)
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(median, q3 - q1, len(samples))


def p_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided Mann-Whitney U test: the probability, if x and y came from one distribution, of
    x's samples ranking at least this far above y's. Exact for small samples without ties (the
    usual case for timings), else the normal approximation with tie and continuity correction."""
    n, m = len(x), len(y)
    if not n or not m:
        raise ValueError("no samples")
    u2 = sum(2 * (a > b) + (a == b) for a in x for b in y)  # twice U, an integer even with ties
    ties = len(set(x) | set(y)) < n + m
    if not ties and n * m <= 400:
        counts = _u_counts(n, m)
        return sum(counts[u2 // 2:]) / sum(counts)
    pooled = sorted([*x, *y])
    tie_term = sum(t**3 - t for t in (pooled.count(v) for v in set(pooled)))
    variance = n * m / 12 * ((n + m + 1) - tie_term / ((n + m) * (n + m - 1)))
    if variance == 0:
        return 1.0
    z = (u2 / 2 - n * m / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


@functools.lru_cache(maxsize=None)
def min_p(n: int, m: int) -> float:
    """The smallest p `p_greater` can give for n and m samples (all of x above all of y): when it is
    not below a significance level, no outcome of the rounds can be significant."""
    return p_greater([float(m + i) for i in range(n)], [float(i) for i in range(m)])


@functools.lru_cache(maxsize=None)
def _u_counts(n: int, m: int) -> tuple[int, ...]:
    """How many orderings of n x's and m y's give U = 0, 1, ..., n*m (U counts pairs x > y)."""
    if n == 0 or m == 0:
        return (1,)
    counts = [0] * (n * m + 1)
    for u, c in enumerate(_u_counts(n - 1, m)):  # the largest value is an x: it beats all m y's
        counts[u + m] += c
    for u, c in enumerate(_u_counts(n, m - 1)):  # the largest value is a y: it beats none
        counts[u] += c
    return tuple(counts)
