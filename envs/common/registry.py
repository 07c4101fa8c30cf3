"""Explicit registries with errors that name the valid choices and the closest match."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


def unknown_choice_error(what: str, name: object, valid: Iterable[str]) -> ValueError:
    """Build the ``ValueError`` for an unknown choice, listing the valid ones and a close match."""
    choices = sorted(valid)
    near = difflib.get_close_matches(str(name), choices, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ValueError(f"unknown {what} {name!r}; valid choices: {choices}{hint}")


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """Return ``registry[name]`` or raise a ``ValueError`` naming the valid keys.

    Args:
        registry: the mapping of names to entries.
        name: the requested name.
        what: what a name denotes, used in the message (``"env"``, ``"algo"``...).
    """
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise unknown_choice_error(what, name, registry) from None


def check_choice(name: str, valid: Iterable[str], what: str) -> str:
    """Return ``name`` if it is one of ``valid``; otherwise raise a helpful ``ValueError``."""
    valid = list(valid)
    if name not in valid:
        raise unknown_choice_error(what, name, valid)
    return name
