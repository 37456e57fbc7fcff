"""Which state keys a node reads: the mapping ``System.compile`` hands each node instead
of a plain state dict, so the recorder can keep a node's real inputs (its reads)."""

from __future__ import annotations

from typing import Any

from optimas_lg.errors import ReplayError


class ReadTracker(dict):
    """A node's input state that notes which keys the node reads (iteration reads all)."""

    __slots__ = ("reads",)

    def __init__(self, data: Any = (), /) -> None:
        super().__init__(data)
        self.reads: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.reads.add(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(key)
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self.reads.add(key)  # type: ignore[arg-type]
        return dict.__contains__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self.reads.add(key)
        return dict.pop(self, key, *default)

    def _all(self) -> None:
        self.reads.update(dict.keys(self))

    def keys(self):  # type: ignore[override]
        self._all()
        return dict.keys(self)

    def values(self):  # type: ignore[override]
        self._all()
        return dict.values(self)

    def items(self):  # type: ignore[override]
        self._all()
        return dict.items(self)

    def __iter__(self):  # type: ignore[override]
        self._all()
        return dict.__iter__(self)

    def copy(self) -> dict[str, Any]:
        self._all()
        return dict.copy(self)

    def __or__(self, other: Any) -> dict[str, Any]:
        self._all()
        return dict.copy(self) | other

    def _entries(self) -> dict[str, Any]:
        """The entries without marking a read (``dict.copy`` goes through the overridden
        ``keys`` and ``__getitem__`` of a subclass, which would mark every key)."""
        return dict(dict.items(self))

    def __copy__(self) -> "ReadTracker":
        # LangGraph's input cache hands each task a shallow copy: give it its own read set
        return ReadTracker(self._entries())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._entries(),))


class ContextReads:
    """A run context (the graph's ``context_schema`` instance) that notes which fields a
    node reads, so the loop can tell a knob the node no longer reads (a dead code path)
    from one it does. Attribute and item access are forwarded to the real context. A read
    of the context as a whole (``model_dump()``, ``vars()``, ``__dict__``, ``dict(...)``,
    iteration, any method) sets ``whole``: every field may have been read."""

    __slots__ = ("_context", "reads", "whole")

    def __init__(self, context: Any) -> None:
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "reads", set())
        object.__setattr__(self, "whole", False)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._context, name)
        if name.startswith("_") or callable(value):
            object.__setattr__(self, "whole", True)
        else:
            self.reads.add(name)
        return value

    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, Any]:  # what vars() reads
        object.__setattr__(self, "whole", True)
        return vars(self._context)

    def __iter__(self) -> Any:
        object.__setattr__(self, "whole", True)
        return iter(self._context)

    def __getitem__(self, key: str) -> Any:  # a TypedDict context
        self.reads.add(key)
        return self._context[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(key)
        return self._context.get(key, default) if isinstance(self._context, dict) else getattr(
            self._context, key, default)


def state_values(state: Any) -> dict[str, Any]:
    """A state given as a mapping, pydantic model or dataclass (the graph's state schema),
    as a plain dict of its channel values."""
    if isinstance(state, dict):
        return dict(dict.items(state))
    fields = getattr(type(state), "model_fields", None) or getattr(state, "__dataclass_fields__", None)
    if fields is None:
        raise ReplayError(f"a node's input state must be a mapping, pydantic model or dataclass, got {type(state)}")
    return {name: getattr(state, name) for name in fields}


def read_values(state: Any, reads: Any = ()) -> dict[str, Any]:
    """The entries of a node's input ``state`` that it ``reads`` (every entry when none are
    named); what the LRF and the prompt proposer see of an input. A ``Send`` argument that
    is not a state (a string, say) is shown whole, as ``input``."""
    try:
        values = state_values(state)
    except ReplayError:
        return {"input": state}
    return {k: values[k] for k in (reads or values) if k in values}
