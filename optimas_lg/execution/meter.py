"""Tokens spent outside recorded runs: a node run alone (pair candidates, proposer
candidates) and a proposer's own LLM. The recorder stores the LLM calls of full runs;
these others leave no row, so the job counts them here, by source, to hold them against
``budget.max_llm_tokens`` and show them in the report."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult


def token_usage(response: LLMResult) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens an LLM reported: its ``token_usage`` (OpenAI-style
    servers) or the message's ``usage_metadata``; ``None`` when it reported none."""
    usage = (response.llm_output or {}).get("token_usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    gens = response.generations[0] if response.generations else []
    message = getattr(gens[0], "message", None) if gens else None
    if prompt is None and getattr(message, "usage_metadata", None):
        prompt, completion = message.usage_metadata.get("input_tokens"), message.usage_metadata.get("output_tokens")
    return prompt, completion


class TokenMeter:
    """Token totals by source, safe to add to from many threads."""

    def __init__(self) -> None:
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, source: str, tokens: int) -> None:
        if tokens:
            with self._lock:
                self._totals[source] = self._totals.get(source, 0) + int(tokens)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def handler(self, source: str) -> BaseCallbackHandler:
        """A LangChain callback handler adding every LLM call's tokens to ``source``."""
        return _Counting(self, source)


class _Counting(BaseCallbackHandler):
    run_inline = True

    def __init__(self, meter: TokenMeter, source: str) -> None:
        self.meter, self.source = meter, source

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        prompt, completion = token_usage(response)
        self.meter.add(self.source, (prompt or 0) + (completion or 0))
