"""Settings dicts (JSON from the CLI, Studio or a stored job) into config dataclasses,
checked at the edge: an unknown name, a wrong type or an invalid value raises one
``SettingsError`` naming the setting, before any job exists."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from optimas_lg.errors import OptimasError, SettingsError

C = TypeVar("C")


def from_settings(cls: type[C], data: Any, section: str) -> C:
    """An instance of the dataclass ``cls`` from a settings mapping; ``section`` names where
    the settings sit (``"budget"``, ``"proposers.prompt"``) in error messages."""
    if isinstance(data, cls):
        return data
    _check_names(cls, data, section)
    try:
        return TypeAdapter(cls).validate_python(dict(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in (section, *error["loc"]))
        value = f" (got {error['input']!r})" if error["loc"] else ""
        raise SettingsError(f"invalid setting {where}: {error['msg']}{value}") from None
    except OptimasError as exc:  # a config's own check in __post_init__
        raise SettingsError(f"invalid {section} settings: {exc}") from None


def _check_names(cls: type, data: Any, section: str) -> None:
    """Unknown names anywhere in ``data`` (pydantic would drop them silently)."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{section} settings must be an object, got {type(data).__name__}: {data!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SettingsError(f"unknown {section} setting(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if dataclasses.is_dataclass(hints.get(name)) and isinstance(value, Mapping):
            _check_names(hints[name], value, f"{section}.{name}")
