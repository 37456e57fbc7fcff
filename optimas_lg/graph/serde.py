"""JSON (de)serialization of graph state values, so recorded node inputs can be replayed.

The store keeps payloads as JSON. Plain JSON values pass through unchanged; everything
else becomes a tagged object ``{"__olg__": tag, ...}`` that ``from_json`` turns back into
the same type: LangChain messages and documents, ``Send``/``Command``, pydantic models,
dataclasses, tuples, sets, bytes, datetimes, enums and dicts with non-string keys.
A value with no faithful JSON form is kept as its ``repr`` (tag ``"repr"``) and
``from_json`` raises ``SerdeError`` naming its type, rather than replaying a wrong value.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import importlib
import math
from typing import Any

from langchain_core._api.beta_decorator import suppress_langchain_beta_warning
from langchain_core.load import dumpd, load
from langchain_core.load.serializable import Serializable
from langgraph.types import Command, Send

from optimas_lg.errors import SerdeError

TAG = "__olg__"


def _qualname(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _import(path: str) -> Any:
    module, _, qual = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SerdeError(f"cannot restore a recorded {path}: {exc}") from exc
    return obj


_PLAIN = frozenset({str, int, bool, type(None)})


def to_json(value: Any) -> Any:
    """A JSON-compatible form of ``value`` that ``from_json`` restores."""
    kind = type(value)
    if kind in _PLAIN:  # exact-type checks first: recording calls this on every node's input and output
        return value
    if kind is list:
        return [v if type(v) in _PLAIN else to_json(v) for v in value]
    if isinstance(value, dict):
        # dict.items (not value.items) so that a read-tracking state does not count this as a read
        items = dict.items(value)
        if all(type(k) is str for k in dict.keys(value)) and not dict.__contains__(value, TAG):
            return {k: v if type(v) in _PLAIN else to_json(v) for k, v in items}
        return {TAG: "dict", "items": [[to_json(k), to_json(v)] for k, v in items]}
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "cls": _qualname(type(value)), "value": to_json(value.value)}
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {TAG: "tuple", "items": [to_json(v) for v in value]}
    if isinstance(value, Serializable) and value.is_lc_serializable():
        return {TAG: "lc", "value": dumpd(value)}
    if isinstance(value, Send):
        return {TAG: "send", "node": value.node, "arg": to_json(value.arg)}
    if isinstance(value, Command):
        return {TAG: "command", "graph": value.graph, "update": to_json(value.update),
                "goto": to_json(value.goto), "resume": to_json(value.resume)}
    if isinstance(value, (set, frozenset)):
        return {TAG: "frozenset" if isinstance(value, frozenset) else "set", "items": [to_json(v) for v in value]}
    if isinstance(value, bytes):
        return {TAG: "bytes", "b64": base64.b64encode(value).decode()}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return {TAG: type(value).__name__, "iso": value.isoformat()}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        fields = {name: to_json(getattr(value, name)) for name in type(value).model_fields}
        return {TAG: "pydantic", "cls": _qualname(type(value)), "fields": fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {TAG: "dataclass", "cls": _qualname(type(value)), "fields": fields}
    if isinstance(value, tuple):  # a NamedTuple
        return {TAG: "namedtuple", "cls": _qualname(type(value)), "items": [to_json(v) for v in value]}
    return {TAG: "repr", "type": _qualname(type(value)), "repr": repr(value)}


def from_json(data: Any) -> Any:
    """Rebuild a value written by ``to_json``; raises ``SerdeError`` for a value kept only as repr."""
    if isinstance(data, list):
        return [from_json(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: from_json(v) for k, v in data.items()}
    if tag == "lc":
        with suppress_langchain_beta_warning():  # load() is marked beta but is LangChain's own reviver
            return load(data["value"], allowed_objects="core")
    if tag == "send":
        return Send(data["node"], from_json(data["arg"]))
    if tag == "command":
        return Command(graph=data["graph"], update=from_json(data["update"]), goto=from_json(data["goto"]),
                       resume=from_json(data["resume"]))
    if tag in ("tuple", "set", "frozenset"):
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](from_json(v) for v in data["items"])
    if tag == "dict":
        return {from_json(k): from_json(v) for k, v in data["items"]}
    if tag == "float":
        return float(data["value"])
    if tag == "bytes":
        return base64.b64decode(data["b64"])
    if tag == "enum":
        return _import(data["cls"])(from_json(data["value"]))
    if tag in ("datetime", "date", "time"):
        return getattr(dt, tag).fromisoformat(data["iso"])
    if tag in ("pydantic", "dataclass"):
        cls = _import(data["cls"])
        return cls(**{k: from_json(v) for k, v in data["fields"].items()})
    if tag == "namedtuple":
        return _import(data["cls"])(*(from_json(v) for v in data["items"]))
    if tag == "repr":
        raise SerdeError(
            f"a recorded value of type {data['type']} was stored only as its repr ({data['repr'][:80]}) "
            "and cannot be replayed; keep state values JSON-like, LangChain objects, dataclasses or pydantic models"
        )
    raise SerdeError(f"unknown serialized tag {tag!r}; the store was written by another optimas-lg version")
