"""Statistics over seeds: Student-t intervals and rliable's IQM, probability of improvement and performance profiles.

rliable (Agarwal et al., 2021) gives each with a stratified-bootstrap interval.
The bootstrap is computed here (:func:`stratified_bootstrap`) with a seeded ``numpy.random.Generator``: rliable's
``StratifiedBootstrap`` draws its indices from NumPy's global generator (``np.random.choice``; its
``random_state`` argument is not used for them), so it could only be made reproducible by reseeding the global
generator. It is the same method (each task's runs resampled with replacement, percentile interval); a test checks
the intervals against rliable's within Monte-Carlo error. rliable itself is only needed by that test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass
class Summary:
    """Mean and confidence half-width over seeds of one metric."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        if self.n == 1 or not math.isfinite(self.half_width):
            return f"{self.mean:.1f} (1 seed)"
        return f"{self.mean:.1f} ± {self.half_width:.1f}"


def student_t_interval(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean and Student-t half-width of ``values`` (NaNs dropped); the half-width is NaN with fewer than 2 values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(float("nan"), float("nan"), 0)
    if len(x) == 1:
        return Summary(float(x[0]), float("nan"), 1)
    t = float(stats.t.ppf(0.5 + confidence / 2.0, len(x) - 1))
    return Summary(float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(len(x)), len(x))


# ------------------------------------------------------------------------------------------ rliable's statistics
@dataclass
class Interval:
    """A point estimate with a bootstrap confidence interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n == 0 or not math.isfinite(self.value):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:.1f} ({self.n} seed{'s' if self.n > 1 else ''}, no interval)"
        return f"{self.value:.1f} [{self.low:.1f}, {self.high:.1f}]"


def _iqm(x: np.ndarray) -> float:
    """Interquartile mean of every entry (rliable's ``metrics.aggregate_iqm``: a 25% trimmed mean)."""
    return float(stats.trim_mean(x, proportiontocut=0.25, axis=None))


def iqm_intervals(scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> list[Interval]:
    """Interquartile mean of each column of a ``(runs, k)`` matrix with its stratified-bootstrap interval.

    The columns are separate quantities (metrics) measured on the same runs: the stratified bootstrap
    (:func:`stratified_bootstrap`) resamples the runs of each column independently, and the function returns the IQM
    per column (a 25% trimmed mean of each column), so one bootstrap serves all of them.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0:
        return [Interval(float("nan"), float("nan"), float("nan"), 0) for _ in range(scores.shape[-1] if scores.ndim else 0)]
    out = [Interval(float("nan"), float("nan"), float("nan"), 0)] * scores.shape[1]
    good = [k for k in range(scores.shape[1]) if np.isfinite(scores[:, k]).all()]
    if not good:
        return out
    x = scores[:, good]
    values = [_iqm(x[:, k]) for k in range(x.shape[1])]
    if x.shape[0] < 2:
        for k, v in zip(good, values, strict=True):
            out[k] = Interval(v, float("nan"), float("nan"), x.shape[0])
        return out
    low, high = stratified_bootstrap([list(x.T)], lambda a: stats.trim_mean(a, 0.25, axis=0), reps, confidence, seed)
    for col, (k, v) in enumerate(zip(good, values, strict=True)):
        out[k] = Interval(v, float(low[col]), float(high[col]), x.shape[0])
    return out


def iqm_interval(scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Interquartile mean over all entries of a ``(runs, tasks)`` matrix and its stratified-bootstrap interval."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0 or not np.isfinite(scores).all():
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = _iqm(scores)
    if scores.shape[0] < 2:
        return Interval(value, float("nan"), float("nan"), scores.shape[0])
    low, high = stratified_bootstrap([list(scores.T)], _iqm, reps, confidence, seed)
    return Interval(value, float(low[0]), float(high[0]), scores.shape[0])


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, as rliable's ``metrics.probability_of_improvement``, with array operations.

    The statistic is the Mann-Whitney U over ``n m`` (ties count one half); the bootstrap calls it thousands of
    times, and scipy's version costs milliseconds per call (a test checks both agree).
    """
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return np.array([float(np.mean(greater + 0.5 * ties))])


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y) averaged over tasks with its stratified-bootstrap interval; ``x``, ``y``: (runs, tasks)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if min(x.shape[0], y.shape[0]) < 1 or x.shape[1] != y.shape[1]:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = float(_improvement(x, y)[0])
    if min(x.shape[0], y.shape[0]) < 2:
        return Interval(value, float("nan"), float("nan"), 1)
    low, high = stratified_bootstrap([list(x.T), list(y.T)], _improvement, reps, confidence, seed)
    return Interval(value, float(low[0]), float(high[0]), min(len(x), len(y)))


# ------------------------------------------------------------------------------------------ seeds x envs, any seed counts
def equal_weight(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A ``(L, envs)`` matrix: each env's scores over its seeds, repeated to ``L``, the least common multiple of the counts.

    rliable's aggregates take a ``(runs, tasks)`` matrix, one count of runs for every task. Repeating each env's
    scores ``L / n`` times keeps every seed and gives each env the same weight in the IQM, the probability of
    improvement and the performance profile (it leaves each env's empirical distribution unchanged); with equal
    counts it is the plain matrix.
    """
    counts = [len(c) for c in columns]
    if not counts or min(counts) < 1:
        return np.zeros((0, len(counts)))
    size = math.lcm(*counts)
    return np.stack([np.repeat(np.asarray(c, dtype=float), size // len(c)) for c in columns], axis=1)


def _equal_counts(*methods: Sequence[np.ndarray]) -> bool:
    return all(len({len(c) for c in columns}) <= 1 for columns in methods)


def _resampler(columns: Sequence[np.ndarray]) -> Any:
    """A function of a generator that returns one stratified resample of ``columns`` as an :func:`equal_weight` matrix."""
    columns = [np.asarray(c, dtype=float) for c in columns]
    if _equal_counts(columns):  # one draw for the whole (runs, tasks) matrix, as rliable's StratifiedBootstrap
        matrix = equal_weight(columns)
        return lambda rng: np.take_along_axis(matrix, rng.integers(0, len(matrix), matrix.shape), axis=0)
    return lambda rng: equal_weight([c[rng.integers(0, len(c), len(c))] for c in columns])


def stratified_bootstrap(
    methods: Sequence[Sequence[np.ndarray]],
    statistic: Any,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(*matrices)`` when each env's seeds are resampled with their own count.

    ``methods``: per method, one array of scores per env (any counts). Each resample draws, for every method and env,
    as many seeds as it has, with replacement (rliable's stratified bootstrap, which needs equal counts), then
    applies ``statistic`` to the :func:`equal_weight` matrices. The draws come from ``numpy.random.default_rng(seed)``
    (NumPy's global generator is neither used nor reseeded). Returns the lower and upper bounds (arrays).
    """
    rng = np.random.default_rng(seed)
    resamplers = [_resampler(columns) for columns in methods]
    values = [np.atleast_1d(statistic(*(draw(rng) for draw in resamplers))) for _ in range(int(reps))]
    low, high = np.percentile(np.array(values), [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)], axis=0)
    return low, high


def aggregate_iqm(columns: Sequence[np.ndarray], reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """IQM over seeds x envs with its interval; ``columns``: one array of scores per env, any seed counts.

    Equal counts: :func:`iqm_interval` unchanged. Otherwise every env weighs the same (:func:`equal_weight`) and the
    interval is :func:`stratified_bootstrap`'s with each env's own count.
    """
    columns = [np.asarray(c, dtype=float) for c in columns]
    if _equal_counts(columns):
        return iqm_interval(equal_weight(columns), reps, confidence, seed)
    if not all(np.isfinite(c).all() for c in columns) or min(len(c) for c in columns) < 1:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = float(stats.trim_mean(equal_weight(columns), proportiontocut=0.25, axis=None))
    n = min(len(c) for c in columns)
    if n < 2:
        return Interval(value, float("nan"), float("nan"), n)
    low, high = stratified_bootstrap([columns], lambda x: stats.trim_mean(x, 0.25, axis=None), reps, confidence, seed)
    return Interval(value, float(low[0]), float(high[0]), n)


def aggregate_improvement(
    x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y) averaged over envs, each env with all its seeds; ``x``, ``y``: one array per env, any counts.

    Equal counts per method: :func:`probability_of_improvement` unchanged. Otherwise each env's P(X > Y)
    uses all the seeds of both methods there, the envs weigh the same, and the interval is
    :func:`stratified_bootstrap`'s.
    """
    x, y = [np.asarray(c, dtype=float) for c in x], [np.asarray(c, dtype=float) for c in y]
    if _equal_counts(x, y):
        return probability_of_improvement(equal_weight(x), equal_weight(y), reps, confidence, seed)
    if len(x) != len(y) or min(len(c) for c in x + y) < 1:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = float(_improvement(equal_weight(x), equal_weight(y))[0])
    n = min(len(c) for c in x + y)
    if n < 2:
        return Interval(value, float("nan"), float("nan"), n)
    low, high = stratified_bootstrap([x, y], _improvement, reps, confidence, seed)
    return Interval(value, float(low[0]), float(high[0]), n)


def performance_profiles(
    methods: Mapping[str, Sequence[np.ndarray]], taus: np.ndarray, reps: int = 2000, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fraction of scores above each ``tau`` (envs weighed the same) and its 95% band, per method; any seed counts.

    Equal counts for every method: rliable's ``create_performance_profile`` (the fraction of all scores above each
    ``tau``); otherwise the profile of the :func:`equal_weight` matrix. The band is :func:`stratified_bootstrap`'s.
    Returns ``(profiles, bands)``, a band being ``(2, len(taus))`` as rliable's.
    """
    taus = np.asarray(taus, dtype=float)

    def profile(x: np.ndarray) -> np.ndarray:
        return (x.reshape(-1, 1) > taus.reshape(1, -1)).mean(axis=0)

    out, cis = {}, {}
    for method, columns in methods.items():
        out[method] = profile(equal_weight(columns))
        cis[method] = np.stack(stratified_bootstrap([columns], profile, reps, 0.95, seed))
    return out, cis
