"""Checks every Hydra script runs at launch (a Hydra callback, ``configs/hydra/default.yaml``).

The schemas (``envs.common.config`` and each package's ``config.py``) already make Hydra refuse a mistyped key
(``sed=3``). Two ways past them remain, and both used to be silently ignored: a key *added* with ``+key=...`` or
``++key=...`` (no script reads it), and ``run_dir=...``, a schema key for callers outside Hydra (tests), which a Hydra
script ignores because its run folder is ``hydra.run.dir``. :class:`LaunchChecks` refuses both before the job runs
(before Hydra creates the run folder, for a single run).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[tuple[str, list[str]]]:
    """``(dotted key, valid keys there)`` for every key of a schema-typed node that its dataclass does not define.

    Nodes without a dataclass schema (free-form dicts such as ``system.parameters``) are not checked; the root's
    ``hydra`` node is Hydra's own.
    """
    found: list[tuple[str, list[str]]] = []
    schema = OmegaConf.get_type(cfg)
    fields = {f.name for f in dataclasses.fields(schema)} if schema and dataclasses.is_dataclass(schema) else None
    for key in cfg.keys():
        name = str(key)
        if not prefix and name == "hydra":
            continue
        if fields is not None and name not in fields:
            found.append((prefix + name, sorted(fields)))
            continue
        child = cfg._get_node(name)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            found += unknown_keys(child, f"{prefix}{name}.")
    return found


def check_launch(cfg: DictConfig) -> None:
    """Refuse keys no script reads (added with ``+``) and ``run_dir`` under Hydra.

    Raises:
        ValueError: naming the key, what to do instead and, for unknown keys, the valid keys and a close match.
    """
    bad = unknown_keys(cfg)
    if bad:
        lines = []
        for key, valid in bad:
            near = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
            lines.append(f"{key!r} (valid there: {valid}{f'; did you mean {near[0]!r}?' if near else ''})")
        raise ValueError(
            f"unknown config keys added with '+': {'; '.join(lines)}; the script does not read them, so they are refused"
        )
    run_dir: Any = cfg.get("run_dir")
    if run_dir is not None:
        raise ValueError(
            f"run_dir={run_dir!r} is for callers outside Hydra (tests); a Hydra script writes to hydra.run.dir "
            "(hydra.sweep.dir with -m), so pass hydra.run.dir=<folder> instead"
        )


class LaunchChecks(Callback):
    """Hydra callback: :func:`check_launch` before a run starts (and before each job of a multirun).

    Hydra turns a callback's exceptions into warnings and goes on, so a refusal exits with ``error: <message>``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check a single run's config before Hydra creates its folder."""
        _exit_on_error(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check each job's config (multirun jobs: the sweep's values are only known here)."""
        _exit_on_error(config)


def _exit_on_error(config: DictConfig) -> None:
    try:
        check_launch(config)
    except ValueError as e:
        sys.exit(f"error: {e}")
