"""Shared shapes of ``dynamics.node``: solve statistics, solve outputs and task batches."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class SolveStats(NamedTuple):
    """Counters of one solve (forward pass).

    Attributes:
        nfe: vector-field evaluations of the forward solve (regularizer extras included).
        accepted: accepted steps of the adaptive solver.
        rejected: rejected steps of the adaptive solver.
    """

    nfe: int
    accepted: int
    rejected: int


class SolveOutput(NamedTuple):
    """What ``dynamics.node.solve.solve`` returns.

    Attributes:
        ys: the solution at the requested times, shape ``(len(t), *y0.shape)``.
        penalty: the regularizer's value (before the coefficient), a 0-d tensor in the state dtype, or ``None``
            when the regularizer is ``none``.
        stats: counters of the solve.
    """

    ys: Tensor
    penalty: Tensor | None
    stats: SolveStats


class ClassBatch(NamedTuple):
    """A classification batch."""

    x: Tensor  # (batch, features)
    y: Tensor  # (batch,) int64 labels


class SeriesBatch(NamedTuple):
    """A batch of series on a shared time grid (irregular series use the union grid plus a mask)."""

    t: Tensor  # (time,)
    values: Tensor  # (batch, time, features)
    mask: Tensor  # (batch, time, features), 1 where observed
