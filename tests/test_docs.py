"""The documentation says what is true: every command in README.md and docs/ composes, the quick ones run.

A command is a line (with ``\\`` continuations) of a fenced code block that starts with ``python scripts/<name>.py``.
Every such command is composed in-process with Hydra's compose API, each sweep (``a,b``) expanded to its first
value, so a renamed key, a missing group choice or a typo in a guide fails here. Commands with placeholders
(``<...>``) are skipped. A block preceded by ``<!-- test: run -->`` is also run as written, from a temporary
folder (its runs land there), and must exit 0.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("", "bash", "sh", "shell", "console")
SCRIPT = re.compile(r"^python (scripts/(\w+)\.py)(.*)$")


class Command(NamedTuple):
    page: str
    script: str
    args: list[str]
    run: bool
    text: str


def shell_blocks(text: str) -> list[tuple[bool, str]]:
    """(marked ``<!-- test: run -->``, body) of every shell code block of a markdown page."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = lines[i].strip()
        if not opening.startswith("```"):
            i += 1
            continue
        language = opening[3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), len(lines))
        marked = i > 0 and lines[i - 1].strip() == "<!-- test: run -->"
        if language in SHELL:
            blocks.append((marked, "\n".join(lines[i + 1 : end])))
        i = end + 1
    return blocks


def commands() -> list[Command]:
    """Every ``python scripts/...`` command of the pages."""
    found = []
    for page in PAGES:
        if not page.exists() or page.parts[-2:-1] == ("api",):
            continue
        for run, body in shell_blocks(page.read_text()):
            body = re.sub(r"\\\n\s*", " ", body)
            for line in body.splitlines():
                line = line.split(" #", 1)[0].strip()
                m = SCRIPT.match(line)
                if m and "<" not in line and "..." not in line:
                    found.append(Command(str(page.relative_to(ROOT)), m.group(2), shlex.split(m.group(3)), run, line))
    return found


def overrides_of(args: list[str]) -> list[str]:
    """Hydra overrides of a command line, multirun flags dropped and each sweep reduced to its first value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    kept = [a for a in args if a not in ("-m", "--multirun")]
    out = []
    for override in OverridesParser.create().parse_overrides(kept):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={first}")
        else:
            out.append(override.input_line or "")
    return out


COMMANDS = commands()


def _register_all() -> None:
    from dynamics.dsr.config import register_configs as reg_dsr
    from dynamics.node.config import register_configs as reg_node
    from envs.coding.config import register_mcg_configs
    from envs.common.config import register_configs as reg_common
    from rl.qarl.config import register_configs as reg_qarl
    from rl.robustness.config import register_configs as reg_rob

    for register in (reg_common, reg_qarl, reg_rob, reg_dsr, reg_node, register_mcg_configs):
        register()


def test_the_pages_have_commands() -> None:
    assert len(COMMANDS) >= 10, [c.text for c in COMMANDS]


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.page}:{c.text[:60]}" for c in COMMANDS])
def test_command_composes(command: Command) -> None:
    from hydra import compose, initialize_config_dir

    assert (ROOT / "scripts" / f"{command.script}.py").exists(), f"{command.page}: no script {command.script}"
    _register_all()
    overrides = overrides_of(command.args)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        compose(config_name=command.script, overrides=overrides, return_hydra_config=True)


QUICK = [c for c in COMMANDS if c.run]


@pytest.mark.parametrize("command", QUICK, ids=[f"{c.page}:{c.text[:60]}" for c in QUICK])
def test_quick_command_runs(command: Command, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    script = str(ROOT / "scripts" / f"{command.script}.py")
    done = subprocess.run([sys.executable, script, *command.args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command.text}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a schema, nested dataclasses expanded."""
    out = []
    for f in fields(cls):  # type: ignore[arg-type]
        value = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(value):
            out += _keys(type(value), f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_configuration_reference_lists_every_key() -> None:
    gen = _generator()
    page = gen.render()
    for script, (schema, _) in gen._schemas().items():
        section = page.split(f"## `{script}`", 1)[1].split("\n## ", 1)[0]
        missing = [k for k in _keys(schema) if f"| `{k}` |" not in section]
        assert not missing, f"{script}: keys missing from the configuration reference: {missing}"
    assert "an integer >= 1" in page  # ranges come from the validators' tables


def test_api_pages_cover_every_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    monkeypatch.setattr(sys, "argv", ["gen_reference.py", str(tmp_path)])
    gen.main()
    text = "".join(p.read_text() for p in (tmp_path / "api").glob("*.md"))
    assert "::: rl.robustness.report.stats" in text and "::: envs.common.io" in text
