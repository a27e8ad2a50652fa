"""Mergeable sketches, written in numpy, with stated error bounds.

:class:`QuantileSketch`
    A weighted multi-level compactor (the MRL/KLL family). Values enter level 0
    with their weights. When a level holds more than ``k`` items it is sorted and
    *compacted*: about half as many items are picked at evenly spaced positions
    of the cumulative weight (with a start offset that moves along a
    low-discrepancy sequence), each carrying an equal share of the level's weight,
    and pushed to the next level. Merging two sketches concatenates levels and
    compacts again, so the result does not depend on how the data was split up to
    the error bound.

    Error: a compaction moves the rank of any threshold by less than the weight
    of one output item. Summed over the compactions of a level that is at most
    ``W / k`` (unweighted) or ``2 W / k`` (weighted), where ``W`` is the total
    weight, so the rank error of any quantile is at most ``H * W / k``
    (``2 H W / k`` weighted), ``H`` being the number of levels that compacted
    (``ceil(log2(n / k))``). With the default ``k = 2048`` that is under 1% of
    ``W`` for up to 2 billion values; typical errors are far smaller because the
    offsets make errors of successive compactions cancel. Equal values are
    merged (weights summed) before any compaction, so the sketch is exact while
    it sees at most ``k`` distinct values. Memory is at most ``(H + 1) * k`` items.

:class:`FrequencyTable`
    Value counts of a string feature, exact while it holds at most
    ``max_exact`` distinct values. Beyond that it becomes a Misra-Gries summary of
    ``max_exact`` counters (each count underestimates the true one by at most
    :attr:`FrequencyTable.max_error`, which is ``<= N / (max_exact + 1)`` for ``N``
    values) plus a HyperLogLog of ``2**14`` registers for the number of distinct
    values (standard error about 0.8%).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from conveyor.beam_utils.hashing import mix64

_GOLDEN = 0.6180339887498949

DEFAULT_K = 2048


class QuantileSketch:
    """A mergeable weighted quantile sketch with rank error ``<= H * W / k``.

    See the module docstring for the bound. ``add`` takes numpy arrays, ``merge``
    another sketch; ``quantiles`` answers any number of ranks at once.
    """

    __slots__ = ("compactions", "k", "values", "weights")

    def __init__(self, k: int = DEFAULT_K):
        self.k = int(k)
        self.values: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.compactions = 0

    def __getstate__(self):
        return (self.k, self.values, self.weights, self.compactions)

    def __setstate__(self, state):
        self.k, self.values, self.weights, self.compactions = state

    @property
    def total_weight(self) -> float:
        """The weight of every value added."""
        return float(sum(w.sum() for w in self.weights))

    @property
    def num_levels(self) -> int:
        """The number of levels the sketch holds (a compaction moves items a level up)."""
        return len(self.values)

    def is_exact(self) -> bool:
        """True while no compaction has happened (every value is kept)."""
        return self.compactions == 0

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Adds values (float64-convertible, no NaN) with optional weights."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        if weights is None:
            weights = np.ones(values.size, dtype=np.float64)
        else:
            weights = np.asarray(weights, dtype=np.float64)
            keep = weights > 0
            if not keep.all():
                values, weights = values[keep], weights[keep]
                if values.size == 0:
                    return
        level = 0
        if values.size > 2 * self.k:
            # A large batch is first coalesced (equal values summed: exact) and,
            # if still large, reduced in one compaction straight to the level
            # whose item weight repeated halving would have given it: one sort
            # instead of a cascade, and error below one output item's weight.
            values, weights = _coalesce(values, weights)
            if values.size > 2 * self.k:
                level = int(np.ceil(np.log2(values.size / self.k)))
                values, weights = self._compact(values, weights, max(1, values.size >> level))
        self._push(level, values, weights)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Merges ``other`` into this sketch (in place) and returns this sketch."""
        self.compactions += other.compactions
        for level in range(other.num_levels):
            if other.values[level].size:
                self._push(level, other.values[level], other.weights[level])
        return self

    def _push(self, level: int, values: np.ndarray, weights: np.ndarray) -> None:
        while True:
            while self.num_levels <= level:
                self.values.append(np.empty(0, np.float64))
                self.weights.append(np.empty(0, np.float64))
            v = np.concatenate([self.values[level], values]) if self.values[level].size else values
            w = (
                np.concatenate([self.weights[level], weights])
                if self.weights[level].size
                else weights
            )
            if v.size > self.k:
                v, w = _coalesce(v, w)  # exact; often enough on its own for few distinct values
            if v.size <= self.k:
                self.values[level], self.weights[level] = v, w
                return
            values, weights = self._compact(v, w)
            self.values[level] = np.empty(0, np.float64)
            self.weights[level] = np.empty(0, np.float64)
            level += 1

    def _compact(
        self, v: np.ndarray, w: np.ndarray, m: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Picks ``m`` (default: half) of the sorted items ``v`` at evenly spaced
        cumulative weights; each output item carries ``W / m``."""
        cw = np.cumsum(w)
        m = max(1, v.size // 2) if m is None else m
        step = cw[-1] / m
        self.compactions += 1
        offset = (self.compactions * _GOLDEN) % 1.0
        positions = (offset + np.arange(m)) * step
        idx = np.minimum(np.searchsorted(cw, positions, side="right"), v.size - 1)
        return v[idx], np.full(m, step)

    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.values:
            return np.empty(0), np.empty(0)
        v = np.concatenate(self.values)
        w = np.concatenate(self.weights)
        order = np.argsort(v, kind="stable")
        return v[order], np.cumsum(w[order])

    def quantiles(self, ranks) -> np.ndarray:
        """Values at the given fractional ranks in [0, 1] (NaN if the sketch is empty).

        The value at rank ``q`` is the smallest retained value whose cumulative
        weight reaches ``q * W``.
        """
        ranks = np.asarray(ranks, dtype=np.float64)
        v, cw = self._sorted()
        if v.size == 0:
            return np.full(ranks.shape, np.nan)
        idx = np.searchsorted(cw, ranks * cw[-1], side="right")
        return v[np.clip(idx, 0, v.size - 1)]

    def weighted_items(self) -> tuple[np.ndarray, np.ndarray]:
        """All retained ``(values, weights)``; their weighted histogram estimates the data's."""
        if not self.values:
            return np.empty(0), np.empty(0)
        return np.concatenate(self.values), np.concatenate(self.weights)


def _coalesce(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorts ``v`` and merges equal values, summing their weights (no error)."""
    if w[0] == w[-1] and (w == w[0]).all():  # equal weights: a plain sort suffices
        v = np.sort(v)
        starts = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1])
        if starts.size == v.size:
            return v, w
        sizes = np.diff(np.append(starts, v.size))
        return v[starts], sizes * w[0]
    order = np.argsort(v)
    v, w = v[order], w[order]
    starts = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1])
    if starts.size == v.size:
        return v, w
    return v[starts], np.add.reduceat(w, starts)


# ---------------------------------------------------------------- hashing / HLL

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_P = np.uint64(0x100000001B3)


def hash_binary(arr: pa.Array) -> np.ndarray:
    """Stable 64-bit hashes of a (large_)binary/string array without nulls, vectorised.

    A polynomial hash of the bytes modulo 2**64, summed through a prefix sum so
    every string costs O(its length) numpy work, then mixed with splitmix64.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.empty(0, np.uint64)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    if end > start:
        data = np.frombuffer(bufs[2], dtype=np.uint8)[start:end].astype(np.uint64)
        seg = np.repeat(np.arange(n), lengths)
        pos_from_end = offsets[1:][seg] - 1 - np.arange(start, end)
        maxlen = int(lengths.max())
        with np.errstate(over="ignore"):
            powers = np.cumprod(
                np.concatenate([[np.uint64(1)], np.full(maxlen, _P)]).astype(np.uint64)
            )
            contrib = data * powers[pos_from_end]
            cs = np.concatenate([[np.uint64(0)], np.cumsum(contrib, dtype=np.uint64)])
            local = offsets - start
            h = cs[local[1:]] - cs[local[:-1]]
    else:
        h = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        h = h + lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return mix64(h)


class HyperLogLog:
    """A HyperLogLog distinct counter over 64-bit hashes (``2**p`` registers)."""

    __slots__ = ("p", "registers")

    def __init__(self, p: int = 14):
        self.p = p
        self.registers = np.zeros(1 << p, dtype=np.uint8)

    def __getstate__(self):
        return (self.p, self.registers)

    def __setstate__(self, state):
        self.p, self.registers = state

    def add_hashes(self, hashes: np.ndarray) -> None:
        """Adds 64-bit hashes (``uint64``) of values."""
        if hashes.size == 0:
            return
        p = np.uint64(self.p)
        idx = (hashes >> (np.uint64(64) - p)).astype(np.int64)
        rest = (hashes << p) & _MASK64
        # rank = position of the first 1-bit in the remaining 64-p bits, 1-based.
        nbits = 64 - self.p
        rank = np.full(hashes.size, nbits + 1, dtype=np.uint8)
        nonzero = rest != 0
        if nonzero.any():
            lz = 63 - np.floor(np.log2(rest[nonzero].astype(np.float64))).astype(np.int64)
            # float64 rounding can overstate log2 for values just below a power of 2.
            rank[nonzero] = np.minimum(lz + 1, nbits + 1).astype(np.uint8)
        np.maximum.at(self.registers, idx, rank)

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        """Merges ``other`` (of the same precision) into this sketch (in place) and returns it."""
        np.maximum(self.registers, other.registers, out=self.registers)
        return self

    def estimate(self) -> float:
        """The estimated number of distinct values added."""
        m = float(self.registers.size)
        alpha = 0.7213 / (1 + 1.079 / m)
        est = alpha * m * m / np.sum(np.ldexp(1.0, -self.registers.astype(np.int64)))
        zeros = int(np.count_nonzero(self.registers == 0))
        if est <= 2.5 * m and zeros:
            est = m * np.log(m / zeros)
        return float(est)


# ---------------------------------------------------------------- frequencies


class FrequencyTable:
    """Counts (and weighted counts) per distinct value; exact up to ``max_exact`` values.

    Holds three aligned arrays: ``values`` (large_binary), ``counts`` (int64) and
    ``weights`` (float64). Past ``max_exact`` distinct values it keeps the
    ``max_exact`` largest counters Misra-Gries style and counts distinct values
    with a :class:`HyperLogLog`; :attr:`max_error` bounds how much any count is
    underestimated (0 while exact).
    """

    __slots__ = (
        "_pending",
        "_pending_size",
        "counts",
        "hll",
        "max_error",
        "max_exact",
        "values",
        "weights",
    )

    def __init__(self, max_exact: int):
        self.max_exact = int(max_exact)
        self.values = pa.array([], pa.large_binary())
        self.counts = np.empty(0, np.int64)
        self.weights = np.empty(0, np.float64)
        self.hll: HyperLogLog | None = None
        self.max_error = 0
        self._pending: list = []
        self._pending_size = 0

    def __getstate__(self):
        self.flush()
        return (self.max_exact, self.values, self.counts, self.weights, self.hll, self.max_error)

    def __setstate__(self, state):
        (self.max_exact, self.values, self.counts, self.weights, self.hll, self.max_error) = state
        self._pending = []
        self._pending_size = 0

    @property
    def exact(self) -> bool:
        """True while every distinct value is counted exactly (no sketch yet)."""
        self.flush()
        return self.hll is None

    def add_counts(self, values: pa.Array, counts: np.ndarray, weights: np.ndarray) -> None:
        """Adds distinct ``values`` (no duplicates) with their counts and weight sums.

        Batches are buffered and folded in together, one group-by per
        ``max(65536, max_exact)`` buffered entries, which bounds the buffer.
        """
        if len(values) == 0:
            return
        self._pending.append((values, counts, weights))
        self._pending_size += len(values)
        if self._pending_size > max(65536, self.max_exact):
            self.flush()

    def flush(self) -> None:
        """Folds the buffered counts into the table (and prunes it past ``max_exact``)."""
        if not self._pending:
            return
        pending, self._pending, self._pending_size = self._pending, [], 0
        if self.hll is not None:
            for values, _, _ in pending:
                self.hll.add_hashes(hash_binary(values))
        if len(self.values):
            pending.insert(0, (self.values, self.counts, self.weights))
        if len(pending) == 1:
            self.values, self.counts, self.weights = pending[0]
        else:
            table = pa.table(
                {
                    "v": pa.concat_arrays([p[0].cast(pa.large_binary()) for p in pending]),
                    "c": np.concatenate([p[1] for p in pending]),
                    "w": np.concatenate([p[2] for p in pending]),
                }
            )
            grouped = table.group_by("v").aggregate([("c", "sum"), ("w", "sum")])
            self.values = grouped.column("v").combine_chunks()
            self.counts = grouped.column("c_sum").to_numpy()
            self.weights = grouped.column("w_sum").to_numpy()
        self._prune()

    def merge(self, other: FrequencyTable) -> FrequencyTable:
        """Merges ``other`` into this table (in place) and returns it."""
        other.flush()
        self.flush()
        if other.hll is not None:
            if self.hll is None:
                self._start_sketch()
            self.hll.merge(other.hll)
        self.max_error += other.max_error
        self.add_counts(other.values, other.counts, other.weights)
        self.flush()
        return self

    def _start_sketch(self) -> None:
        self.hll = HyperLogLog()
        self.hll.add_hashes(hash_binary(self.values))

    def _prune(self) -> None:
        if len(self.values) <= self.max_exact:
            return
        if self.hll is None:
            self._start_sketch()
        # Misra-Gries: subtract the (max_exact+1)-th largest count from every
        # counter and keep the ones still positive.
        threshold = int(np.partition(self.counts, -(self.max_exact + 1))[-(self.max_exact + 1)])
        keep = self.counts > threshold
        kept_counts = self.counts[keep]
        share = np.where(self.counts > 0, self.weights / np.maximum(self.counts, 1), 0.0)[keep]
        self.values = self.values.filter(pa.array(keep))
        self.counts = kept_counts - threshold
        self.weights = share * self.counts
        self.max_error += threshold

    def num_unique(self) -> int:
        """The number of distinct values: exact, or the HyperLogLog estimate past the limit."""
        self.flush()
        if self.hll is None:
            return len(self.values)
        return max(round(self.hll.estimate()), len(self.values))
