"""Dataclass configurations read from TOML, with clear errors for unknown or mistyped keys."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import TypeVar

from um2n.errors import UM2NError

C = TypeVar("C")


def _field_default(f: dataclasses.Field):
    """The default value of dataclass field ``f`` (a fresh one from its factory), or ``MISSING``."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def config_from_dict(cls: type[C], raw: dict, where: str, base: C | None = None) -> C:
    """Build dataclass ``cls`` from ``raw``, the keys it sets over ``base`` (default: the
    dataclass defaults). A nested dataclass field comes from a TOML table, set over that
    field's own default: a case whose ``loop`` defaults to ``LoopConfig(move_every=5, ...)``
    keeps those values for every key its ``[loop]`` table leaves out."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UM2NError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in raw.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise UM2NError(f"{where}: [{name}] must be a table")
            inner = getattr(base, name) if base is not None else _field_default(known[name])
            kwargs[name] = config_from_dict(hint, value, f"{where} [{name}]",
                                            inner if isinstance(inner, hint) else None)
        else:
            kwargs[name] = value
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except (TypeError, ValueError, UM2NError) as exc:
        raise UM2NError(f"{where}: {exc}") from None


def read_toml(path: str | Path) -> dict:
    """The table of a TOML file; a missing or malformed file raises a :class:`UM2NError` naming it."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UM2NError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UM2NError(f"{p}: not valid TOML ({exc})") from None


def load_config(cls: type[C], path: str | Path | None) -> C:
    """``cls()`` updated from a TOML file (``None``: the defaults)."""
    if path is None:
        return cls()
    return config_from_dict(cls, read_toml(path), str(path))
