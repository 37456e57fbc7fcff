"""The OpenAI chat-completions wire format, as far as the local server implements it.

Unknown fields are ignored (clients send many optional ones), but fields whose meaning
the server cannot honour (tools, logprobs) are rejected rather than silently dropped.
``response_format`` is honoured: JSON mode and JSON Schemas are enforced while decoding
(``llm.structured``).
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimas_lg.llm.engine import ChatResult
from optimas_lg.llm.generation import SamplingParams
from optimas_lg.llm.structured import output_schema

DEFAULT_MAX_TOKENS = 256


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def as_template_input(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=16)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict] | None = None
    response_format: dict | None = None
    logprobs: bool | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> list[str] | None:
        stops = [stop] if isinstance(stop, str) else stop
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops

    @model_validator(mode="after")
    def _supported(self) -> ChatCompletionRequest:
        if self.tools:
            raise ValueError("tool calling is not supported by the local model server")
        output_schema(self.response_format)  # raises for a format the server cannot enforce
        if self.logprobs:
            raise ValueError("logprobs are not supported by the local model server")
        return self

    def sampling_params(self) -> list[SamplingParams]:
        """One row per choice; with a seed, choice ``i`` samples with ``seed + i``."""
        max_tokens = self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS
        schema = output_schema(self.response_format)
        return [
            SamplingParams(
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=max_tokens,
                stop=tuple(self.stop or ()),
                seed=None if self.seed is None else self.seed + i,
                json_schema=schema,
            )
            for i in range(self.n)
        ]


def _usage(result: ChatResult) -> dict:
    completion = sum(c.completion_tokens for c in result.choices)
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": result.prompt_tokens + completion,
    }


def _envelope(model: str, kind: str) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": model}


def completion_body(model: str, result: ChatResult) -> dict:
    """A ``chat.completion`` response."""
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason,
            "logprobs": None,
        }
        for i, c in enumerate(result.choices)
    ]
    return {**_envelope(model, "chat.completion"), "choices": choices, "usage": _usage(result)}


def stream_chunks(model: str, result: ChatResult, include_usage: bool) -> list[dict]:
    """``chat.completion.chunk`` events for a finished result: each choice's text in one
    delta, then its finish reason, then (if asked) the usage."""
    head = _envelope(model, "chat.completion.chunk")
    chunks = []
    for i, c in enumerate(result.choices):
        delta = {"role": "assistant", "content": c.text}
        chunks.append({**head, "choices": [{"index": i, "delta": delta, "finish_reason": None}]})
        chunks.append({**head, "choices": [{"index": i, "delta": {}, "finish_reason": c.finish_reason}]})
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(result)})
    return chunks


def error_body(message: str, kind: str, code: str | None = None) -> dict:
    """OpenAI's error shape, so clients surface ``message`` as the exception text."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
