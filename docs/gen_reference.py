"""Write the generated pages: the configuration reference (every key, default, valid range) and the API pages.

Nothing here is copied by hand: each script's primary config is composed with Hydra (``configs/<script>.yaml`` over
its ConfigStore schema), the descriptions come from the schemas' ``Attributes:`` docstrings, the valid ranges from
the validators' range tables, and the group choices from ``configs/<group>/*.yaml``. ``make docs`` runs it before
``mkdocs build --strict``; ``tests/test_docs.py`` checks that every schema key appears.

``results/index.md`` is ``benchmarks/README.md``'s headline table; ``docs/api/*.md`` list every public module of the
installed packages for mkdocstrings, so a new module is documented without editing a page. Usage:
``python docs/gen_reference.py [DOCS_DIR]`` (all are written below ``DOCS_DIR``, default ``docs/``; they are build
outputs and not committed).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
DOCS = ROOT / "docs"
API_PAGES = {
    "envs.md": ("envs", ("envs.common", "envs.adversarial", "envs.coding")),
    "rl-qarl.md": ("rl.qarl", ("rl.qarl",)),
    "rl-robustness.md": ("rl.robustness", ("rl.robustness",)),
    "dynamics.md": ("dynamics", ("dynamics.dsr", "dynamics.node")),
}


def _schemas() -> dict[str, tuple[type, str]]:
    """Script name -> (schema dataclass, one-line purpose); registers every schema in Hydra's ConfigStore."""
    from dynamics.dsr.config import GTFEvalConfig, GTFTrainConfig
    from dynamics.dsr.config import register_configs as reg_dsr
    from dynamics.node.config import NodeTrainConfig
    from dynamics.node.config import register_configs as reg_node
    from envs.coding.config import MCGConfig, register_mcg_configs
    from envs.common.config import PlayConfig
    from envs.common.config import register_configs as reg_common
    from rl.qarl.config import TrainQARLConfig
    from rl.qarl.config import register_configs as reg_qarl
    from rl.robustness.config import CalibrateScalesConfig, EvalRobustnessConfig, ReportQARLConfig
    from rl.robustness.config import register_configs as reg_rob

    for register in (reg_common, reg_qarl, reg_rob, reg_dsr, reg_node, register_mcg_configs):
        register()
    return {
        "train_qarl": (TrainQARLConfig, "train QARL or a baseline"),
        "eval_robustness": (EvalRobustnessConfig, "robustness of trained runs"),
        "report_qarl": (ReportQARLConfig, "the comparison report over runs"),
        "calibrate_scales": (CalibrateScalesConfig, "QARL's reward scale c and J_rand"),
        "play_adversarial": (PlayConfig, "random players in a two-player game"),
        "run_mcg": (MCGConfig, "Markov coding games"),
        "train_gtf": (GTFTrainConfig, "PLRNN with generalized teacher forcing"),
        "eval_gtf": (GTFEvalConfig, "the DSR evaluation protocol on trained runs"),
        "train_node": (NodeTrainConfig, "regularized neural ODEs/SDEs"),
    }


def _ranges() -> dict[str, str]:
    """Dotted key -> valid range, from the validators' range tables (``train_qarl``)."""
    from rl.qarl import config as qc

    out: dict[str, str] = {}
    for prefix, table in (
        ("", qc.TOP_RANGES),
        ("env.", qc.ENV_RANGES),
        ("budget.", qc.BUDGET_RANGES),
        ("sac.", qc.SAC_RANGES),
        ("curriculum.", qc.CURRICULUM_RANGES),
    ):
        for key, rule in table.items():
            out[prefix + key] = rule.describe()
    out["budget.keep_full"] = "one of " + ", ".join(f"`{k}`" for k in qc.KEEP_FULL)
    return out


def attribute_docs(cls: type) -> dict[str, str]:
    """Field -> description from the ``Attributes:`` sections of ``cls`` and its bases (Google style)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        text = klass.__doc__ or ""
        if "Attributes:" not in text:
            continue
        section = text.split("Attributes:", 1)[1]
        current = None
        for line in section.splitlines():
            m = re.match(r"^\s{4,8}([A-Za-z_][\w, ]*):\s*(.*)$", line)
            if m and len(line) - len(line.lstrip()) <= 8:
                names = [n.strip() for n in m.group(1).split(",")]
                for name in names:
                    docs[name] = m.group(2).strip()
                current = names
            elif current and line.strip():
                for name in current:
                    docs[name] += " " + line.strip()
            elif not line.strip() and current:
                current = None
    return docs


def _type_name(tp: Any) -> str:
    text = str(tp) if not isinstance(tp, type) else tp.__name__
    return text.replace("typing.", "").replace("NoneType", "None")


def _value(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return "`" + text.replace("|", "\\|") + "`" if text != "" else "`''`"


def rows(cls: type, node: Any, prefix: str, ranges: dict[str, str]) -> list[tuple[str, str, str, str, str]]:
    """(key, type, default, valid range, description) for every field of ``cls``, nested dataclasses expanded."""
    out = []
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        tp = hints.get(f.name, f.type)
        value = node.get(f.name) if isinstance(node, dict) else None
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            out.extend(rows(tp, value, key + ".", ranges))
            continue
        default = "`???` (required)" if value == "???" else _value(value)
        desc = " ".join(docs.get(f.name, "").split()).replace("|", "\\|")
        out.append((key, f"`{_type_name(tp)}`", default, ranges.get(key, ""), desc))
    return out


def group_choices(defaults: list[Any]) -> list[str]:
    """Lines naming each config group of a primary config, its default and its choices."""
    lines = []
    for entry in defaults:
        if not isinstance(entry, dict):
            continue
        for group, default in entry.items():
            folder = CONFIGS / str(group)
            if group == "hydra" or not folder.is_dir():
                continue
            names = sorted(p.stem for p in folder.glob("*.yaml"))
            lines.append(f"- `{group}=` (default `{default}`): " + ", ".join(f"`{n}`" for n in names))
    return lines


def render() -> str:
    """The whole page."""
    schemas = _schemas()
    ranges = _ranges()
    parts = [
        "# Configuration reference",
        "",
        "Generated by `docs/gen_reference.py` from the config schemas, the composed primary configs and the",
        "validators' range tables: do not edit by hand. Keys are set on the command line as `key=value`",
        "(e.g. `python scripts/train_qarl.py sac.batch_size=128`); a key not listed here is refused at launch.",
        "An empty range cell means the type alone constrains the key; choices are named in the description.",
        "",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        for script, (cls, purpose) in schemas.items():
            cfg = compose(config_name=script)
            raw = OmegaConf.load(CONFIGS / f"{script}.yaml")
            defaults = list(OmegaConf.to_container(raw.get("defaults", []))) if "defaults" in raw else []
            parts += [f"## `{script}`", "", f"`python scripts/{script}.py`: {purpose} (`configs/{script}.yaml`).", ""]
            choices = group_choices(defaults)
            if choices:
                parts += ["Config groups:", "", *choices, ""]
            parts += ["| key | type | default | valid range | description |", "|---|---|---|---|---|"]
            parts += [
                f"| `{k}` | {t} | {d} | {r} | {desc} |"
                for k, t, d, r, desc in rows(cls, OmegaConf.to_container(cfg, resolve=False), "", ranges)
            ]
            parts.append("")
    return "\n".join(parts)


def public_modules(package: str) -> list[str]:
    """Dotted names of ``package`` and its modules and subpackages, private ones (``_x``) left out."""
    names = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(p.startswith("_") for p in parts):
            names.append(".".join(parts))
    return names


def api_page(title: str, packages: tuple[str, ...]) -> str:
    """One API page: a mkdocstrings block per public module."""
    lines = [f"# `{title}` API", "", "Generated from the docstrings by mkdocstrings (`docs/gen_reference.py`).", ""]
    for package in packages:
        for module in public_modules(package):
            lines += [f"::: {module}", "    options:", "      heading_level: 2", "      show_submodules: false", ""]
    return "\n".join(lines)


ASSETS = (".png", ".md", ".csv", ".json", ".sh", ".txt")


def copy_benchmark_files(docs: Path) -> int:
    """Copy the figures, reports and raw numbers kept in ``benchmarks/`` to ``<docs>/results/files/`` for the site.

    The results pages link to them there; ``benchmarks/`` stays their one committed home.
    """
    import shutil

    source, n = ROOT / "benchmarks", 0
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in ASSETS and path != source / "README.md":
            target = docs / "results" / "files" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            n += 1
    return n


def results_overview() -> str:
    """``results/index.md``: ``benchmarks/README.md`` (the one headline table), its links made relative to the page."""
    text = (ROOT / "benchmarks" / "README.md").read_text()
    text = text.replace("](../docs/results/", "](").replace("](../docs/", "](../")
    return text.replace("# Benchmarks: the headline figures", "# Results: the headline figures", 1)


def main() -> None:
    """Write the configuration reference, the API pages and the results overview below ``sys.argv[1]`` (``docs/``)."""
    docs = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS
    print(f"copied {copy_benchmark_files(docs)} files from benchmarks/ to {docs / 'results' / 'files'}")
    pages = {docs / "reference" / "configuration.md": render(), docs / "results" / "index.md": results_overview()}
    pages |= {docs / "api" / name: api_page(title, packages) for name, (title, packages) in API_PAGES.items()}
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(docs.parent) if docs.parent in path.parents else path}")


if __name__ == "__main__":
    main()
