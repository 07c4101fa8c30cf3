"""Choice checks for the coding package (thin wrapper over ``envs.common.registry``)."""

from __future__ import annotations

from collections.abc import Iterable

from envs.common.registry import check_choice


def check_method(name: str, valid: Iterable[str], what: str) -> str:
    """Return ``name`` if valid, else raise ``ValueError`` listing the choices and a close match."""
    return check_choice(name, valid, what)
