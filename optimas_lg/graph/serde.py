"""JSON (de)serialization of graph state values, so recorded node inputs can be replayed.

The store keeps payloads as JSON. Plain JSON values pass through unchanged; everything
else becomes a tagged object ``{"__olg__": tag, ...}`` that ``from_json`` turns back into
the same type: LangChain messages and documents, ``Send``/``Command``, pydantic models,
dataclasses, tuples, sets, bytes, datetimes, enums, dicts with non-string keys and NumPy
arrays and scalars of plain dtypes.
A value with no faithful JSON form is kept as its ``repr`` (tag ``"repr"``) and
``from_json`` raises ``SerdeError`` naming its type, rather than replaying a wrong value.

A LangGraph Server speaks another JSON: a message is its pydantic ``model_dump`` (every
field, ``type`` naming the class). ``from_wire`` turns such dicts back into messages, so
a run recorded through a server stores what a local run stores; ``to_wire`` writes
messages that way for the server.

A store may be shared or edited, so its contents are data, never code: ``from_json``
builds only the LangChain classes in ``LANGCHAIN_TYPES`` and the classes of the ``Types``
it is given (``System.types``: the graph's own schema types). It never imports a name
read from a stored value.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import typing
from collections.abc import Iterable
from typing import Any

from langchain_core._api.beta_decorator import suppress_langchain_beta_warning
from langchain_core.documents import Document
from langchain_core.load import dumpd, load
from langchain_core.load.serializable import Serializable
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langgraph.types import Command, Send
from typing_extensions import is_typeddict

from optimas_lg.errors import SerdeError

TAG = "__olg__"

# Plain data classes only: LangChain's own "core" set also admits prompts and runnables,
# whose construction from a stored payload is not safe.
LANGCHAIN_TYPES: tuple[type[Serializable], ...] = (
    AIMessage, AIMessageChunk, ChatMessage, ChatMessageChunk, FunctionMessage, FunctionMessageChunk,
    HumanMessage, HumanMessageChunk, RemoveMessage, SystemMessage, SystemMessageChunk, ToolMessage,
    ToolMessageChunk, Document,
)


def _qualname(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _buildable(cls: type) -> bool:
    """Whether ``to_json`` records ``cls`` by name (so decoding it needs an allow-list entry)."""
    if issubclass(cls, Serializable):
        return False  # stored with LangChain's own format, checked against LANGCHAIN_TYPES
    return (issubclass(cls, enum.Enum) or hasattr(cls, "model_fields") or dataclasses.is_dataclass(cls)
            or (issubclass(cls, tuple) and hasattr(cls, "_fields")))


def _field_types(cls: type) -> list[Any]:
    """The annotations of ``cls``'s fields; an unresolvable forward reference hides only its own class."""
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict):
        return [f.annotation for f in fields.values()]
    try:
        return list(typing.get_type_hints(cls, include_extras=True).values())
    except Exception:  # NameError & co from a string annotation: register what it names explicitly
        return [a for a in getattr(cls, "__annotations__", {}).values() if not isinstance(a, str)]


class Types:
    """The classes ``from_json`` may build from a recorded value, looked up by the
    ``module:qualname`` the value carries (never imported).

    ``Types.reachable(*roots)`` collects the enums, pydantic models, dataclasses and
    NamedTuples among ``roots`` and in their fields, recursively through containers,
    unions, ``Annotated`` and TypedDicts: pass a graph's state and context schemas.
    """

    def __init__(self, classes: Iterable[type] = ()) -> None:
        self._classes = {_qualname(c): c for c in classes}

    @classmethod
    def reachable(cls, *roots: Any) -> Types:
        found: list[type] = []
        seen: set[Any] = set()
        todo = list(roots)
        while todo:
            tp = todo.pop()
            origin, args = typing.get_origin(tp), typing.get_args(tp)
            if origin is typing.Literal:
                todo += [type(a) for a in args if isinstance(a, enum.Enum)]
            elif origin is typing.Annotated:
                todo.append(args[0])
            elif origin is not None:
                todo += args
            elif isinstance(tp, type) and tp not in seen:
                seen.add(tp)
                if _buildable(tp):
                    found.append(tp)
                if is_typeddict(tp) or (_buildable(tp) and not issubclass(tp, enum.Enum)):
                    todo += _field_types(tp)
        return cls(found)

    def __contains__(self, cls: type) -> bool:
        return self._classes.get(_qualname(cls)) is cls

    def __len__(self) -> int:
        return len(self._classes)

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:  # a field may be called name
        """An instance of the allowed class called ``name``; ``SerdeError`` for any other name."""
        cls = self._classes.get(name)
        if cls is None:
            raise SerdeError(
                f"a recorded value names type {name}, which this graph does not declare; decoding builds only "
                "LangChain messages and documents and the state and context schema types, so pass any other "
                "type a node stores as System(builder, types=[...])"
            )
        try:
            return cls(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise SerdeError(f"cannot rebuild a recorded {name}: {exc}") from exc


NO_TYPES = Types()


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
    if type(value).__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", "O") in _NUMPY_KINDS:
        return _numpy_to_json(value)
    return {TAG: "repr", "type": _qualname(type(value)), "repr": repr(value)}


_NUMPY_KINDS = frozenset("biufcSUmM")
"""dtype kinds whose arrays are plain bytes (object and structured arrays are not: kept as repr)."""


def _numpy_to_json(value: Any) -> dict[str, Any]:
    """A NumPy array or scalar (an embedding, a feature vector) as dtype, shape and raw bytes."""
    import numpy as np

    array = np.asarray(value)
    return {TAG: "ndarray", "dtype": array.dtype.str, "shape": list(array.shape),
            "scalar": isinstance(value, np.generic), "b64": base64.b64encode(array.tobytes()).decode()}


def _numpy_from_json(data: dict[str, Any]) -> Any:
    import numpy as np

    dtype = np.dtype(data["dtype"])
    if dtype.kind not in _NUMPY_KINDS:
        raise SerdeError(f"a recorded array has dtype {data['dtype']!r}, which optimas-lg never writes")
    array = np.frombuffer(base64.b64decode(data["b64"]), dtype=dtype).reshape(data["shape"]).copy()
    return array[()] if data["scalar"] else array


def from_json(data: Any, types: Types = NO_TYPES) -> Any:
    """Rebuild a value written by ``to_json``, building only LangChain messages and documents
    and the classes in ``types``; raises ``SerdeError`` for any other type or a value kept as repr."""
    if isinstance(data, list):
        return [from_json(v, types) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: from_json(v, types) for k, v in data.items()}
    if tag == "lc":
        return _load_langchain(data["value"])
    if tag == "send":
        return Send(data["node"], from_json(data["arg"], types))
    if tag == "command":
        return Command(graph=data["graph"], update=from_json(data["update"], types),
                       goto=from_json(data["goto"], types), resume=from_json(data["resume"], types))
    if tag in ("tuple", "set", "frozenset"):
        items = (from_json(v, types) for v in data["items"])
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
    if tag == "dict":
        return {from_json(k, types): from_json(v, types) for k, v in data["items"]}
    if tag == "float":
        return float(data["value"])
    if tag == "bytes":
        return base64.b64decode(data["b64"])
    if tag == "enum":
        return types.build(data["cls"], from_json(data["value"], types))
    if tag in ("datetime", "date", "time"):
        return getattr(dt, tag).fromisoformat(data["iso"])
    if tag in ("pydantic", "dataclass"):
        return types.build(data["cls"], **{k: from_json(v, types) for k, v in data["fields"].items()})
    if tag == "namedtuple":
        return types.build(data["cls"], *(from_json(v, types) for v in data["items"]))
    if tag == "ndarray":
        return _numpy_from_json(data)
    if tag == "repr":
        raise SerdeError(
            f"a recorded value of type {data['type']} was stored only as its repr ({data['repr'][:80]}) "
            "and cannot be replayed; keep state values JSON-like, LangChain objects, dataclasses or pydantic models"
        )
    raise SerdeError(f"unknown serialized tag {tag!r}; the store was written by another optimas-lg version")


# the message classes by their ``type`` field, as the server's JSON names them
WIRE_MESSAGES: dict[str, type[BaseMessage]] = {
    cls.model_fields["type"].default: cls for cls in LANGCHAIN_TYPES
    if issubclass(cls, BaseMessage)}
_WIRE_FIELDS = {name: frozenset(cls.model_fields) for name, cls in WIRE_MESSAGES.items()}


def from_wire(data: Any) -> Any:
    """A value as a LangGraph Server sends it, with its messages rebuilt: a dict whose keys
    are exactly the fields of the message class its ``type`` names (the server's form of a
    message; a user's dict of that exact shape would be one too)."""
    if isinstance(data, list):
        return [from_wire(v) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("type")
    if isinstance(kind, str) and _WIRE_FIELDS.get(kind) == data.keys():
        return WIRE_MESSAGES[kind](**data)
    return {k: from_wire(v) for k, v in data.items()}


def to_wire(value: Any) -> Any:
    """``value`` as JSON for a LangGraph Server: messages as the server's own message JSON
    (which its ``add_messages`` reducer reads back), everything else as ``to_json``."""
    if isinstance(value, BaseMessage):
        return {k: to_wire(v) for k, v in value.model_dump().items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value) and TAG not in value:
        return {k: to_wire(v) for k, v in value.items()}
    return to_json(value)


def _load_langchain(value: Any) -> Any:
    try:
        with suppress_langchain_beta_warning():  # load() is marked beta but is LangChain's own reviver
            return load(value, allowed_objects=LANGCHAIN_TYPES)
    except ValueError as exc:
        name = ".".join(map(str, value.get("id") or ["?"])) if isinstance(value, dict) else type(value).__name__
        raise SerdeError(f"a recorded LangChain value names {name}, which is not a message or document, so it "
                         "is not decoded") from exc
