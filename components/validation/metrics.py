"""Distances between two distributions, as the drift and skew comparators use them.

* :func:`l_infinity`: the largest absolute difference between the two value
  frequencies (each count divided by its own dataset's total) over the values
  of either dataset: for categorical (string) features, from the rank
  histograms.
* :func:`jensen_shannon_histograms`: the Jensen-Shannon divergence (base 2, so
  in [0, 1]) of two numeric histograms. The histograms are first put on common
  buckets: the union of both sets of finite boundaries, each original bucket's
  count spread over the new buckets it covers in proportion to their width
  (values assumed uniform within a bucket). Zero-width buckets (point masses)
  are compared point by point; the mass of buckets with an infinite bound is
  one more bucket, and the NaN count another, each compared with the other
  dataset's.
* :func:`jensen_shannon_counts`: the same divergence of two value -> count maps
  (categorical features).

All three follow TFDV's definitions so that a threshold tuned on TFDV means the
same here; ``tests/test_validation_parity.py`` checks the numbers agree to 1e-6.
One difference on purpose: TFDV 1.16 gives NaN and infinite values buckets that
never match the other dataset's (two identical histograms with NaNs diverge),
and drops the NaN counts altogether when the bucket boundaries differ; here NaN
is compared with NaN and infinite mass with infinite mass, so identical data
always gives 0. Without NaN or infinite values the numbers are TFDV's.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping


def l_infinity(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[str, float]:
    """(value with the largest difference, L-infinity distance) of two count maps.

    Ties go to the value that sorts last, as in TFDV; two empty maps give
    ``("", 0.0)``.
    """
    ta = sum(a.values())
    tb = sum(b.values())
    best_key, best = "", 0.0
    for key in sorted(set(a) | set(b)):
        pa = a.get(key, 0.0) / ta if ta else 0.0
        pb = b.get(key, 0.0) / tb if tb else 0.0
        d = abs(pa - pb)
        if d >= best:
            best_key, best = key, d
    return best_key, best


def _kl_terms(p: list[float], q: list[float]) -> float:
    total = 0.0
    for pi, qi in zip(p, q):
        if pi > 0 and qi > 0:
            total += pi * math.log2(pi / qi)
    return total


def _jsd_of_aligned(p: list[float], q: list[float]) -> float | None:
    sp, sq = sum(p), sum(q)
    if sp == 0 or sq == 0:
        return None
    p = [x / sp for x in p]
    q = [x / sq for x in q]
    m = [(x + y) / 2 for x, y in zip(p, q)]
    return min((_kl_terms(p, m) + _kl_terms(q, m)) / 2, 1.0)


def jensen_shannon_counts(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    """JS divergence of two value -> count maps; None if either is empty or has a count <= 0."""
    if not a or not b or any(v <= 0 for v in a.values()) or any(v <= 0 for v in b.values()):
        return None
    ta, tb = sum(a.values()), sum(b.values())
    total = 0.0
    for key in set(a) | set(b):
        pa = a.get(key, 0.0) / ta
        pb = b.get(key, 0.0) / tb
        m = (pa + pb) / 2
        if pa:
            total += pa * math.log2(pa / m)
        if pb:
            total += pb * math.log2(pb / m)
    return min(total / 2, 1.0)


def _split(histogram):
    """(regular buckets as (low, high, count), {point: count}, infinite mass)."""
    regular, points, infinite = [], {}, 0.0
    for bucket in histogram.buckets:
        lo, hi, c = bucket.low_value, bucket.high_value, bucket.sample_count
        if not (math.isfinite(lo) and math.isfinite(hi)):
            infinite += c
        elif lo == hi:
            points[lo] = points.get(lo, 0.0) + c
        else:
            regular.append((lo, hi, c))
    return regular, points, infinite


def _spread(regular, boundaries: list[float]) -> list[float]:
    """Counts of ``regular`` buckets over the intervals between ``boundaries``."""
    out = [0.0] * max(len(boundaries) - 1, 0)
    for lo, hi, c in regular:
        i = bisect.bisect_left(boundaries, lo)
        j = bisect.bisect_left(boundaries, hi)
        width = hi - lo
        for k in range(i, j):
            out[k] += (boundaries[k + 1] - boundaries[k]) / width * c
    return out


def jensen_shannon_histograms(h1, h2) -> float | None:
    """JS divergence of two ``Histogram`` protos (None if either is empty or types differ)."""
    if h1.type != h2.type:
        return None
    reg1, pts1, inf1 = _split(h1)
    reg2, pts2, inf2 = _split(h2)
    bounds1 = {x for lo, hi, _ in reg1 for x in (lo, hi)}
    bounds2 = {x for lo, hi, _ in reg2 for x in (lo, hi)}
    if bounds1 == bounds2:
        p = [c for _, _, c in reg1]
        q = [c for _, _, c in reg2]
        if len(p) != len(q):  # same edges, different bucketing: align them anyway
            bounds = sorted(bounds1)
            p, q = _spread(reg1, bounds), _spread(reg2, bounds)
    else:
        bounds = sorted(bounds1 | bounds2)
        p, q = _spread(reg1, bounds), _spread(reg2, bounds)
    for point in sorted(set(pts1) | set(pts2)):
        p.append(pts1.get(point, 0.0))
        q.append(pts2.get(point, 0.0))
    if inf1 or inf2:
        p.append(inf1)
        q.append(inf2)
    if h1.num_nan > 0 or h2.num_nan > 0:
        p.append(float(h1.num_nan))
        q.append(float(h2.num_nan))
    return _jsd_of_aligned(p, q)
