"""One factory for every chat model a knob can name: ``local/...`` or ``openai/...``.

Local names go through this process's model server (``ensure_server``), so the agent
gets a ``ChatOpenAI`` either way: sync, async and streaming behave the same. Both kinds
honour ``optimas_lg.llm.exploration.sampling(...)`` at call time (pair collection uses it
to sample extra candidate outputs at temperature > 0).
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import BaseChatModel

from optimas_lg.errors import ModelServerError
from optimas_lg.llm.adapters import adapter_path, split_model_name
from optimas_lg.llm.exploration import ExploringChatOpenAI
from optimas_lg.llm.registry import REGISTRY, check_model
from optimas_lg.llm.server import ensure_server


def chat_model(name: str, temperature: float = 0.0, max_tokens: int | None = 256, **kw: Any) -> BaseChatModel:
    """A chat model for ``name``: ``"local/smollm2-135m"``, ``"local/smollm2-135m@<adapter>"``,
    a local HF folder path, or ``"openai/<model>"`` (hosted; needs ``OPENAI_API_KEY``).

    Extra keyword arguments go to ``ChatOpenAI``. The model is an ``ExploringChatOpenAI``:
    inside ``sampling(temperature, seed)`` its requests sample with per-call seeds. It asks
    for token usage when it streams too (``stream_usage``): a graph run on a LangGraph
    Server streams its models' calls, and without usage their tokens went uncounted.
    """
    kw.setdefault("stream_usage", True)
    if name.startswith("openai/"):
        if not (kw.get("api_key") or os.environ.get("OPENAI_API_KEY")):
            raise ModelServerError(f"{name!r} is a hosted OpenAI model: set OPENAI_API_KEY (or pass api_key=...)")
        return ExploringChatOpenAI(model=name.removeprefix("openai/"), temperature=temperature,
                                   max_tokens=max_tokens, **kw)
    base, adapter = split_model_name(name)
    check_model(base)  # fail here, with the install command, rather than at the first call
    if adapter is not None:
        adapter_path(adapter)
    return ExploringChatOpenAI(
        model=name,
        base_url=ensure_server(None if base in REGISTRY else base) + "/v1",  # the server serves this folder
        api_key="local",
        temperature=temperature,
        max_tokens=max_tokens,
        **kw,
    )
