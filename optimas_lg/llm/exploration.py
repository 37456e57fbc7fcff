"""Sampling overrides: make the chat models of ``chat_model`` sample (temperature > 0,
seeded) for the code run inside a ``with sampling(...)`` block, without rebuilding them.

Pair collection uses this to get several distinct outputs from an LLM node whose knobs
rarely change what it writes: the node runs on its recorded input at the current knob
values, once per seed, inside ``sampling(temperature, seed)``. The override lives in a
``contextvars.ContextVar`` and is read when a request is built, not when the model is
constructed, so an agent that builds its ``ChatOpenAI`` once at import time samples too.

Each LLM call made inside one block gets its own seed, ``seed + i`` for the block's i-th
call, so a node that calls the model twice does not draw the same tokens twice, and the
same block run again (same seed, same calls in the same order) sends the same requests.
Contexts are copied into LangGraph's task threads and asyncio tasks, so the override
reaches node code run by ``graph.invoke``/``ainvoke``; a plain ``threading.Thread`` or
a ``ThreadPoolExecutor`` started inside the block does not inherit it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_openai import ChatOpenAI

from optimas_lg.errors import OptimasError

__all__ = ["ExploringChatOpenAI", "Sampling", "current_sampling", "sampling"]


@dataclass
class Sampling:
    """An active override: ``temperature`` for every call, seeds ``seed``, ``seed + 1``, ...
    in call order. ``calls`` counts the LLM requests built under it so far."""

    temperature: float
    seed: int
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def peek_seed(self) -> int:
        """The seed the next call will get (without taking it)."""
        with self._lock:
            return self.seed + self.calls

    def next_seed(self) -> int:
        """Take the seed of the next call."""
        with self._lock:
            value = self.seed + self.calls
            self.calls += 1
            return value


_CURRENT: contextvars.ContextVar[Sampling | None] = contextvars.ContextVar("optimas_lg_sampling", default=None)


def current_sampling() -> Sampling | None:
    """The override active in this context, or ``None`` (models use their own settings)."""
    return _CURRENT.get()


@contextmanager
def sampling(temperature: float, seed: int) -> Iterator[Sampling]:
    """Within the block, chat models from ``optimas_lg.chat_model`` sample at ``temperature``
    with per-call seeds ``seed, seed + 1, ...``. Yields the ``Sampling`` (its ``calls`` says
    how many LLM requests the block made)."""
    if not temperature >= 0:
        raise OptimasError(f"sampling temperature must be >= 0, got {temperature!r}")
    state = Sampling(float(temperature), int(seed))
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


class ExploringChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that honours ``sampling(...)`` at call time: inside the block each
    request carries the block's temperature and its own seed (Chat Completions only; the
    Responses API has no seed, so there only the temperature applies)."""

    def _get_request_payload(self, input_: LanguageModelInput, *, stop: list[str] | None = None,
                             **kwargs: Any) -> dict:
        active = current_sampling()
        if active is None:
            return super()._get_request_payload(input_, stop=stop, **kwargs)
        payload = super()._get_request_payload(input_, stop=stop, **{**kwargs, "temperature": active.temperature})
        if "messages" in payload:  # Chat Completions
            payload["seed"] = active.next_seed()
        return payload

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        # What callbacks (the recorder) and LangChain's cache key see: the sampled
        # temperature and the seed this call is about to take.
        params = super()._get_invocation_params(stop=stop, **kwargs)
        active = current_sampling()
        if active is not None:
            params.update(temperature=active.temperature, seed=active.peek_seed())
        return params
