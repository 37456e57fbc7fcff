"""Knobs: the parts of a graph that optimas-lg may change.

A knob is ``typing.Annotated`` metadata on a field of the graph's ``context_schema``
(a dataclass, TypedDict or pydantic model). The field default is the initial value;
the annotation says what kind of value it is, its search space, and which node uses it::

    @dataclass
    class AgentConfig:
        answer_prompt: Annotated[str, Prompt(node="answer")] = "Answer briefly."
        top_k: Annotated[int, IntRange(1, 10, node="retrieve")] = 3

A TypedDict field cannot have a default, so there the knob carries it::

    class AgentContext(TypedDict):
        top_k: Annotated[int, IntRange(1, 10, node="retrieve", default=3)]
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.constants import START
from typing_extensions import is_typeddict

from optimas_lg.errors import KnobError

KnobKind = Literal["prompt", "choice", "int", "float", "lora", "demos"]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
"""A knob annotation without its own ``default`` (the field's default is the initial value)."""


@dataclass(frozen=True, kw_only=True)
class Knob:
    """Base class of knob annotations; ``node`` names the node that reads the knob.

    ``default`` is the initial value for a field that cannot have one of its own (a
    TypedDict field); a field default, where there is one, must agree with it.
    """

    node: str
    default: Any = dataclasses.field(default=NO_DEFAULT, hash=False)  # may be a list (Demos)
    kind: typing.ClassVar[KnobKind]

    def validate(self, name: str, value: Any) -> None:
        """Raise ``KnobError`` when ``value`` is outside this knob's space."""

    def json_schema(self) -> dict[str, Any]:
        """What JSON Schema says of this knob's space (options, bounds)."""
        return {}

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        """Pydantic's hook for ``Annotated`` metadata: the context schema's JSON schema (what
        Studio shows as the assistant's configuration) then offers a Choice's options and a
        range's bounds instead of a bare string or number."""
        return {**handler(core_schema), **self.json_schema()}


@dataclass(frozen=True)
class Prompt(Knob):
    """A free-text instruction, optimized by LLM proposals (OPRO-style)."""

    kind: typing.ClassVar[KnobKind] = "prompt"

    def validate(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise KnobError(f"knob {name!r}: a Prompt must be a str, got {type(value).__name__}")


@dataclass(frozen=True)
class Choice(Knob):
    """One of a fixed list of options (model selection, any categorical setting)."""

    options: typing.Sequence[Any]
    kind: typing.ClassVar[KnobKind] = "choice"

    def __post_init__(self) -> None:
        if not self.options:
            raise KnobError(f"Choice for node {self.node!r} needs at least one option")
        object.__setattr__(self, "options", tuple(self.options))

    def json_schema(self) -> dict[str, Any]:
        plain = all(o is None or isinstance(o, (str, int, float, bool)) for o in self.options)
        return {"enum": list(self.options)} if plain else {}  # other objects have no JSON to list

    def validate(self, name: str, value: Any) -> None:
        if value not in self.options:
            raise KnobError(f"knob {name!r}: {value!r} is not one of the options {list(self.options)}")


@dataclass(frozen=True)
class _Range(Knob):
    low: float
    high: float
    log: bool = dataclasses.field(default=False, kw_only=True)
    step: float | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise KnobError(f"range for node {self.node!r}: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise KnobError(f"range for node {self.node!r}: log=True needs low > 0, got {self.low}")

    def json_schema(self) -> dict[str, Any]:
        return {"minimum": self.low, "maximum": self.high}

    def validate(self, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise KnobError(f"knob {name!r}: expected a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise KnobError(f"knob {name!r}: {value!r} is outside [{self.low}, {self.high}]")


@dataclass(frozen=True)
class IntRange(_Range):
    """An integer in ``[low, high]`` (optionally on a log scale or with a step)."""

    low: int
    high: int
    step: int = dataclasses.field(default=1, kw_only=True)
    kind: typing.ClassVar[KnobKind] = "int"

    def validate(self, name: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise KnobError(f"knob {name!r}: an IntRange value must be an int, got {value!r}")
        super().validate(name, value)


@dataclass(frozen=True)
class FloatRange(_Range):
    """A float in ``[low, high]`` (optionally on a log scale or with a step)."""

    kind: typing.ClassVar[KnobKind] = "float"


@dataclass(frozen=True)
class LoRA(Knob):
    """LoRA weights of a local model, held as an adapter id (``None`` = base weights).

    The node passes ``f"{base}@{adapter}"`` (or ``base`` when None) to ``chat_model``.
    """

    base: str
    kind: typing.ClassVar[KnobKind] = "lora"

    def validate(self, name: str, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise KnobError(f"knob {name!r}: a LoRA value is an adapter id (str) or None, got {value!r}")


@dataclass(frozen=True)
class Demos(Knob):
    """Few-shot demonstrations for a node: up to ``k`` input/output examples, bootstrapped
    from the node's own recorded calls in well-scored training runs (default ``[]``).

    Each demo is a dict ``{"input": {...}, "output": {...}, "source": {...}}``; ``source``
    names the recorded node call it came from. ``optimas_lg.graph.demos`` renders them.
    """

    k: int = 3
    kind: typing.ClassVar[KnobKind] = "demos"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise KnobError(f"Demos for node {self.node!r}: k must be at least 1, got {self.k}")

    def validate(self, name: str, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
            raise KnobError(f"knob {name!r}: Demos must be a list of dicts, got {value!r}")
        if len(value) > self.k:
            raise KnobError(f"knob {name!r}: {len(value)} demos, more than k={self.k}")


@dataclass(frozen=True)
class KnobSpec:
    """One declared knob: the context field ``name``, its annotation and initial value."""

    name: str
    knob: Knob
    default: Any

    @property
    def node(self) -> str:
        return self.knob.node

    @property
    def kind(self) -> KnobKind:
        return self.knob.kind


def space_size(knobs: typing.Sequence[KnobSpec]) -> int | None:
    """How many different assignments the choice and numeric knobs among ``knobs`` have
    (``None``: a float range without a step). A prompt, LoRA or demos knob has no space to
    enumerate and counts once."""
    size = 1
    for knob in knobs:
        space = knob.knob
        if knob.kind == "choice":
            size *= len(space.options)
        elif knob.kind == "int" or (knob.kind == "float" and space.step is not None):
            size *= math.floor((space.high - space.low) / (space.step or 1) + 1e-9) + 1
        elif knob.kind == "float":
            return None
    return size


def model_name(base: str, adapter: str | None) -> str:
    """The model name a node should request for a LoRA knob's value."""
    return base if adapter is None else f"{base}@{adapter}"


def _unwrap(annotation: Any) -> Any:
    """A TypedDict's ``Required[...]``/``NotRequired[...]`` peeled off, so its ``Annotated`` shows."""
    while typing.get_origin(annotation) in (typing.Required, typing.NotRequired):
        annotation = typing.get_args(annotation)[0]
    return annotation


def _fields(schema: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation with extras, default) for a dataclass, TypedDict or pydantic model."""
    hints = {name: _unwrap(hint) for name, hint in typing.get_type_hints(schema, include_extras=True).items()}
    if dataclasses.is_dataclass(schema):
        out = []
        for f in dataclasses.fields(schema):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            out.append((f.name, hints[f.name], default))
        return out
    if hasattr(schema, "model_fields"):  # pydantic v2
        out = []
        for name, info in schema.model_fields.items():
            default = dataclasses.MISSING if info.is_required() else info.get_default(call_default_factory=True)
            out.append((name, hints[name], default))
        return out
    if is_typeddict(schema):  # typing's own misses typing_extensions.TypedDict
        return [(name, hint, dataclasses.MISSING) for name, hint in hints.items()]
    raise KnobError(f"context schema {schema!r} must be a dataclass, TypedDict or pydantic model")


def knob_specs(schema: type | None, nodes: typing.Iterable[str] | None = None,
               enclosing: typing.Mapping[str, str] | None = None) -> dict[str, KnobSpec]:
    """The knobs declared on a context schema, validated against the graph's node names.

    Raises ``KnobError`` naming the field for a knob on an unknown node, a default
    outside its space, a field with two knobs, or a knob without a default. ``enclosing``
    maps nodes inside subgraphs to the graph's node that runs their subgraph, so a knob
    declared on an inner node gets told which node to name instead.
    """
    if schema is None:
        return {}
    known = set(nodes) if nodes is not None else None
    specs: dict[str, KnobSpec] = {}
    for name, annotation, default in _fields(schema):
        knobs = [meta for meta in getattr(annotation, "__metadata__", ()) if isinstance(meta, Knob)]
        if not knobs:
            continue
        if len(knobs) > 1:
            raise KnobError(f"field {name!r} of {schema.__name__} has {len(knobs)} knob annotations; use one")
        knob = knobs[0]
        if type(knob) in (Knob, _Range):
            raise KnobError(f"field {name!r}: use Prompt, Choice, IntRange, FloatRange, LoRA or Demos")
        if known is not None and knob.node not in known:
            outer = (enclosing or {}).get(knob.node)
            if outer is not None:
                raise KnobError(
                    f"field {name!r} of {schema.__name__} declares a knob for node {knob.node!r}, which runs "
                    f"inside the subgraph node {outer!r}: declare it as node={outer!r} (a subgraph node is "
                    "recorded, replayed and optimized as one node of the graph)"
                )
            if knob.node == START:
                raise KnobError(
                    f"field {name!r} of {schema.__name__} declares a knob for {START!r}, which is not a node: "
                    "a router on START has no recorded call to optimize it on. Route from a node instead (one "
                    "that reads the knob and returns Command(goto=...), say) and declare the knob on it"
                )
            raise KnobError(
                f"field {name!r} of {schema.__name__} declares a knob for node {knob.node!r}, "
                f"which is not in the graph (nodes: {sorted(known)})"
            )
        if knob.default is not NO_DEFAULT:
            if default is not dataclasses.MISSING and default != knob.default:
                raise KnobError(f"field {name!r} of {schema.__name__} has two defaults, {default!r} on the field "
                                f"and {knob.default!r} on its knob; keep one")
            default = knob.default
        if default is dataclasses.MISSING:
            raise KnobError(f"field {name!r} of {schema.__name__} is a knob but has no default (the initial value): "
                            f"give the field one, or the knob (default=...) where the field cannot (TypedDict)")
        try:
            knob.validate(name, default)
        except KnobError as exc:
            raise KnobError(f"the default of field {name!r} of {schema.__name__}: {exc}") from None
        specs[name] = KnobSpec(name, knob, default)
    return specs


def validate_assignment(specs: dict[str, KnobSpec], values: dict[str, Any]) -> None:
    """Raise ``KnobError`` for an unknown knob name or a value outside its space."""
    for name, value in values.items():
        if name not in specs:
            raise KnobError(f"unknown knob {name!r}; declared knobs: {sorted(specs)}")
        specs[name].knob.validate(name, value)


def defaults(specs: dict[str, KnobSpec]) -> dict[str, Any]:
    """The initial knob assignment."""
    return {name: spec.default for name, spec in specs.items()}
