"""Evaluation of senders and the trade-off sweeps behind ``scripts/run_mcg.py``.

Writes, in the run directory: ``rate_sweep.csv`` / ``.png`` (decoding accuracy and MDP return against the rate
fraction, EBIM greedy vs uniform quantisation), ``messages_sweep.csv`` / ``.png`` (MEME accuracy against
``|M|`` with the random-sender floor), ``ebim_curve.csv`` / ``.png`` (``I(X;T)`` against ``R``), and TensorBoard
scalars under ``rate/``, ``messages/`` and ``ebim/``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from envs.coding.ebim import ebim_curve
from envs.coding.entropy import entropy
from envs.coding.env import MarkovCodingGameEnv, make_sender
from envs.coding.mdp import make_mdp
from envs.coding.types import FloatArray
from envs.common import atomic_save, log_config, make_writer, prepare_run_dir, seed_everything
from envs.common.registry import lookup

Sender = Callable[[Mapping[str, Any], np.random.Generator], int]


class EvalResult(NamedTuple):
    """Mean outcome of a sender over episodes (``*_se``: standard errors)."""

    accuracy: float
    accuracy_se: float
    mdp_return: float
    return_se: float
    length: float
    posterior_entropy: float
    episodes: int


def play_episodes(
    env: MarkovCodingGameEnv, sender: Sender, episodes: int, seed: int = 0, progress: tqdm | None = None
) -> EvalResult:
    """Play ``episodes`` episodes (reset seeds ``seed, seed + 1, ...``); the sender draws from ``env.np_random``."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes!r}")
    correct, returns, lengths, post = [], [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, steps, info = False, 0, dict[str, Any]()
        while not done:
            obs, _, terminated, truncated, info = env.step(sender(obs, env.np_random))
            done, steps = terminated or truncated, steps + 1
        correct.append(float(info["correct"]))
        returns.append(float(info["mdp_return"]))
        lengths.append(steps)
        post.append(float(info["posterior_entropy"]))
        if progress is not None:
            progress.update(1)
    n = float(episodes)
    return EvalResult(
        accuracy=float(np.mean(correct)),
        accuracy_se=float(np.std(correct) / math.sqrt(n)),
        mdp_return=float(np.mean(returns)),
        return_se=float(np.std(returns) / math.sqrt(n)),
        length=float(np.mean(lengths)),
        posterior_entropy=float(np.mean(post)),
        episodes=episodes,
    )


def mdp_kwargs(mdp_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the MDP factory from an ``MCGMDPConfig`` node (``None`` fields left out)."""
    name = mdp_cfg["name"]
    keys = {"gridworld": ("slip", "max_steps"), "codegrid": ("horizon",), "stateless": ("horizon",)}
    kwargs = {k: mdp_cfg[k] for k in lookup(keys, name, "MDP") if mdp_cfg.get(k) is not None}
    if name == "stateless" and mdp_cfg.get("action_probs") is not None:
        kwargs["n_actions"] = len(mdp_cfg["action_probs"])
    return kwargs


def make_game(mdp_cfg: Mapping[str, Any], **overrides: Any) -> MarkovCodingGameEnv:
    """Build a game from an ``MCGMDPConfig`` node; ``overrides`` go to :class:`MarkovCodingGameEnv`."""
    probs = mdp_cfg.get("action_probs")
    kwargs: dict[str, Any] = {
        "mdp": make_mdp(mdp_cfg["name"], **mdp_kwargs(mdp_cfg)),
        "n_messages": int(mdp_cfg["n_messages"]),
        "log_temperature": float(mdp_cfg["log_temperature"]),
        "policy": None if probs is None else list(probs),
    }
    kwargs.update(overrides)
    return MarkovCodingGameEnv(**kwargs)


def source_distribution(source: str, size: int, param: float, seed: int = 0) -> FloatArray:
    """``p_X`` for the EBIM curve: ``binomial``, truncated ``geometric`` or ``dirichlet``."""
    if size < 2:
        raise ValueError(f"source size must be >= 2, got {size}")
    k = np.arange(size)
    if source == "binomial":
        logp = [math.lgamma(size) - math.lgamma(i + 1) - math.lgamma(size - i) for i in k]
        p = np.exp(np.array(logp)) * param**k * (1 - param) ** (size - 1 - k)
    elif source == "geometric":
        p = (1 - param) * param**k
    elif source == "dirichlet":
        p = np.random.default_rng(seed).dirichlet(np.full(size, param))
    else:
        lookup({"binomial": 0, "geometric": 0, "dirichlet": 0}, source, "EBIM source")
    return p / p.sum()


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write dict rows to ``path`` atomically (columns from the first row)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    atomic_save(path, write)


def _save_fig(fig: Any, path: Path) -> None:
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    plt.close(fig)


def rate_sweep(cfg: DictConfig, bar: tqdm) -> list[dict[str, Any]]:
    """Accuracy and return against the rate fraction, per encoder (``c >= 1`` is plain MEME)."""
    rows: list[dict[str, Any]] = []
    for c in sorted(cfg.rate_fractions, reverse=True):
        encoders = ["none"] if c >= 1 else list(cfg.encoders)
        for enc in encoders:
            proto = "meme" if enc == "none" else "mecb"
            env = make_game(cfg.mcg_mdp, zeta=cfg.zeta, protocol=proto, rate_fraction=min(c, 1.0),
                            encoder="greedy" if enc == "none" else enc, compress_when=cfg.compress_when)  # fmt: skip
            res = play_episodes(env, make_sender(proto, env), cfg.episodes, cfg.seed, bar)
            rate = env.protocol.rate if env.protocol.rate is not None else entropy(env.prior)
            when = cfg.compress_when if proto == "mecb" else "none"
            rows.append({"rate_fraction": c, "rate_bits": rate, "encoder": enc, **res._asdict(), "compress_when": when})
    env = make_game(cfg.mcg_mdp, zeta=cfg.zeta)
    res = play_episodes(env, make_sender("random", env), cfg.episodes, cfg.seed, bar)
    rows.append({"rate_fraction": 0.0, "rate_bits": 0.0, "encoder": "random_sender", **res._asdict(),
                 "compress_when": "none"})  # fmt: skip
    return rows


def messages_sweep(cfg: DictConfig, bar: tqdm) -> list[dict[str, Any]]:
    """MEME accuracy and return against ``|M|``, with the random-sender floor."""
    rows: list[dict[str, Any]] = []
    for n in cfg.message_sizes:
        env = make_game(cfg.mcg_mdp, zeta=cfg.zeta, n_messages=int(n))
        for kind in ("meme", "random"):
            res = play_episodes(env, make_sender(kind, env), cfg.episodes, cfg.seed, bar)
            rows.append({"n_messages": int(n), "bits": math.log2(n), "sender": kind, **res._asdict()})
    return rows


def plot_rate_sweep(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Two panels: accuracy and MDP return against ``c``; MEME (c = 1) starts every encoder's line."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    meme = [r for r in rows if r["encoder"] == "none"]
    for enc in sorted({r["encoder"] for r in rows} - {"none", "random_sender"}):
        pts = sorted(meme + [r for r in rows if r["encoder"] == enc], key=lambda r: r["rate_fraction"])
        c = [r["rate_fraction"] for r in pts]
        for ax, key in zip(axes, ("accuracy", "mdp_return"), strict=True):
            se = [r["accuracy_se" if key == "accuracy" else "return_se"] for r in pts]
            when = {r["compress_when"] for r in pts} - {"none", "always"}
            label = f"MEC-B ({enc}{', ' + min(when) if when and enc == 'uniform' else ''})"
            ax.errorbar(c, [r[key] for r in pts], yerr=se, marker="o", capsize=3, label=label)
    for r in rows:
        if r["encoder"] == "random_sender":
            axes[0].axhline(r["accuracy"], color="gray", ls=":", label="random sender")
            axes[1].axhline(r["mdp_return"], color="gray", ls=":", label="random sender (= pi)")
    for ax, lab in zip(axes, ("decoding accuracy", "MDP return"), strict=True):
        ax.set_xlabel("rate fraction c  (R = c H(M); c = 1: MEME)")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    _save_fig(fig, path)


def plot_messages_sweep(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Accuracy against ``log2 |M|`` for MEME and the random sender (chance level ``1/|M|`` dotted)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for kind in ("meme", "random"):
        pts = [r for r in rows if r["sender"] == kind]
        ax.errorbar([r["n_messages"] for r in pts], [r["accuracy"] for r in pts],
                    yerr=[r["accuracy_se"] for r in pts], marker="o", capsize=3, label=kind)  # fmt: skip
    ns = sorted({r["n_messages"] for r in rows})
    ax.plot(ns, [1 / n for n in ns], "k:", label="1/|M|")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of messages |M|")
    ax.set_ylabel("decoding accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save_fig(fig, path)


def ebim_rows(cfg: DictConfig) -> list[dict[str, Any]]:
    """``I(X;T)`` against ``R`` for the configured source (exact and envelope curves when ``size <= 8``)."""
    p = source_distribution(cfg.ebim.source, cfg.ebim.size, cfg.ebim.param, cfg.seed)
    rates = np.linspace(0.0, entropy(p), cfg.ebim.n_rates + 1)[1:]
    methods = ["greedy", "uniform"] + (["deterministic", "envelope"] if cfg.ebim.size <= 8 else [])
    curve = ebim_curve(p, rates, methods)
    return [{k: float(v[i]) for k, v in curve.items()} for i in range(len(rates))]


def plot_ebim(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """``I(X;T)`` against ``R``: every method plus the bound ``min(R, H(X))``."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    rates = [r["rate"] for r in rows]
    for key in rows[0]:
        if key != "rate":
            ax.plot(rates, [r[key] for r in rows], ls="--" if key == "upper_bound" else "-", label=key)
    ax.set_xlabel("rate R (bits)")
    ax.set_ylabel("I(X;T) (bits)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save_fig(fig, path)


def _log_rows(writer: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    for r in rows:
        if "encoder" in r:
            step, tag = round(100 * r["rate_fraction"]), r["encoder"]
            writer.add_scalar(f"rate/accuracy_{tag}", r["accuracy"], step)
            writer.add_scalar(f"rate/return_{tag}", r["mdp_return"], step)
        elif "sender" in r:
            writer.add_scalar(f"messages/accuracy_{r['sender']}", r["accuracy"], r["n_messages"])
            writer.add_scalar(f"messages/return_{r['sender']}", r["mdp_return"], r["n_messages"])


def train(cfg: DictConfig) -> dict[str, float]:
    """Run the rate sweep, the message sweep and the EBIM curve; write CSV, PNG and TensorBoard scalars.

    Returns:
        ``meme_accuracy`` (c = 1) and ``mean_return`` of MEME, and the accuracy of each encoder at the lowest
        rate fraction (``accuracy_<encoder>_low``).
    """
    run = prepare_run_dir(cfg)
    seed_everything(cfg.seed)
    writer = make_writer(run.root)
    log_config(writer, cfg)
    n_rate_points = sum(1 if c >= 1 else len(cfg.encoders) for c in cfg.rate_fractions) + 1
    total = cfg.episodes * (n_rate_points + 2 * len(cfg.message_sizes))
    title = f"{cfg.mcg_mdp.name}, log tau = {cfg.mcg_mdp.log_temperature}, |M| = {cfg.mcg_mdp.n_messages}"
    with tqdm(total=total, desc="MCG episodes", unit="ep") as bar:
        rate_rows = rate_sweep(cfg, bar)
        msg_rows = messages_sweep(cfg, bar)
    ebim = ebim_rows(cfg)
    write_csv(run.root / "rate_sweep.csv", rate_rows)
    write_csv(run.root / "messages_sweep.csv", msg_rows)
    write_csv(run.root / "ebim_curve.csv", ebim)
    plot_rate_sweep(rate_rows, run.root / "rate_sweep.png", title)
    plot_messages_sweep(msg_rows, run.root / "messages_sweep.png", f"MEME, {cfg.mcg_mdp.name}")
    plot_ebim(ebim, run.root / "ebim_curve.png", f"EBIM, {cfg.ebim.source}({cfg.ebim.size}, {cfg.ebim.param})")
    _log_rows(writer, [*rate_rows, *msg_rows])
    for i, r in enumerate(ebim):
        for key, val in r.items():
            writer.add_scalar(f"ebim/{key}", val, i)
    writer.close()
    low = min(cfg.rate_fractions)
    result = {f"accuracy_{r['encoder']}_low": r["accuracy"] for r in rate_rows if r["rate_fraction"] == low}
    for r in rate_rows:
        if r["encoder"] == "none":
            result.update(meme_accuracy=r["accuracy"], mean_return=r["mdp_return"])
    print(f"wrote {run.root}/{{rate_sweep,messages_sweep,ebim_curve}}.{{csv,png}}")
    print(f"TensorBoard logs: tensorboard --logdir {run.tensorboard}")
    return result
