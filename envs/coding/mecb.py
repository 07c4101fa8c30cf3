"""Minimum-entropy coupling with bottleneck (MEC-B; Ebrahimi, Chen, Khisti, NeurIPS 2024, arXiv:2410.21666).

Maximise ``I(X;Y)`` over ``p(t|x), p(y|t)`` with ``X - T - Y`` Markov, ``H(T) <= R`` and fixed ``p_X, p_Y``. As in
the paper, we compose an EBIM encoder (``P_XT``, deterministic here) with a greedy MEC decoder (``P_TY``):
``P_XY[x, y] = P_XT[x, t] P_TY[t, y] / p_T(t)``. Since ``I(X;Y) >= I(X;T) + I(Y;T) - R``, both stages matter.
With ``R >= H(X)`` and the greedy encoder the result is exactly plain greedy MEC of ``p_X`` and ``p_Y`` (the
identity encoder is skipped so the two are bit-identical). In every case the encoder's empty columns (groups of
zero mass, e.g. zero-probability symbols or empty quantisation bins) are dropped from ``joint_xt``/``joint_ty``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.ebim import ENCODERS, Partition, encode, exact_entropy, rate_tolerance
from envs.coding.mec import greedy_mec_dense
from envs.coding.registry_utils import check_method
from envs.coding.types import FloatArray
from envs.coding.validation import check_distribution, check_rate


class MECBResult(NamedTuple):
    """The MEC-B solution.

    Attributes:
        joint_xy: ``(|X|, |Y|)`` coupling of ``p_X`` and ``p_Y``.
        joint_xt: ``(|X|, |T|)`` encoder joint, empty columns dropped (``|T|`` = number of non-empty groups).
        joint_ty: ``(|T|, |Y|)`` decoder joint (greedy MEC of ``p_T`` and ``p_Y``).
        partition: the deterministic encoder ``T = g(X)`` (``None`` for the greedy encoder when ``R >= H(X)``:
            no compression; ``T`` is then the support of ``p_X``).
    """

    joint_xy: FloatArray
    joint_xt: FloatArray
    joint_ty: FloatArray
    partition: Partition | None


def compose(p_x: FloatArray, partition: Partition, p_y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``P_XY`` from a deterministic encoder and the greedy MEC of ``p_T`` with ``p_Y``.

    Returns:
        ``(P_XY, P_XT, P_TY)`` with the encoder's empty groups dropped.
    """
    used = np.flatnonzero(partition.masses > 0)
    remap = np.full(partition.n_groups, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    labels = remap[partition.labels]
    p_t = partition.masses[used]
    p_t = p_t / p_t.sum()
    joint_ty = greedy_mec_dense(p_t, p_y)
    pos = p_x > 0
    joint_xy = np.zeros((len(p_x), len(p_y)))
    g = labels[pos]
    joint_xy[pos] = p_x[pos, None] * joint_ty[g] / p_t[g, None]
    joint_xt = np.zeros((len(p_x), len(used)))
    joint_xt[np.flatnonzero(pos), g] = p_x[pos]
    return joint_xy, joint_xt, joint_ty


def mec_b(p_x: ArrayLike, p_y: ArrayLike, rate: float, encoder: str = "greedy") -> MECBResult:
    """MEC-B: an EBIM encoder (``"greedy"`` Algorithm 1 or ``"uniform"`` quantisation) then greedy MEC.

    Args:
        p_x: source distribution.
        p_y: target distribution.
        rate: bottleneck ``R`` in bits, a real number in ``[0, log2 len(p_x)]``.
        encoder: ``"greedy"`` or ``"uniform"``.

    Raises:
        ValueError: an invalid distribution, a rate that is not a real number in range, or an unknown encoder.
    """
    px = check_distribution(p_x, "p_X")
    py = check_distribution(p_y, "p_Y")
    r = check_rate(rate, len(px))
    check_method(encoder, ENCODERS, "EBIM encoder")
    if encoder == "greedy" and exact_entropy(px) <= r + rate_tolerance(r):  # the greedy encoder is the identity
        joint = greedy_mec_dense(px, py)
        support = px > 0
        return MECBResult(joint_xy=joint, joint_xt=np.diag(px)[:, support], joint_ty=joint[support], partition=None)
    partition = encode(px, r, encoder)
    joint_xy, joint_xt, joint_ty = compose(px, partition, py)
    return MECBResult(joint_xy=joint_xy, joint_xt=joint_xt, joint_ty=joint_ty, partition=partition)
