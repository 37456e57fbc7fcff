"""The OpenAI chat-completions wire format, as far as the local server implements it.

Unknown fields are ignored (clients send many optional ones), but fields whose meaning
the server cannot honour (logprobs) are rejected rather than silently dropped.
``response_format`` is honoured (JSON mode and JSON Schemas are enforced while decoding,
``llm.structured``), and so are ``tools`` and ``tool_choice`` (``llm.tools``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from optimas_lg.llm.engine import ChatResult
from optimas_lg.llm.generation import Completion, SamplingParams
from optimas_lg.llm.structured import enforceable, output_schema
from optimas_lg.llm.tools import Tools

DEFAULT_MAX_TOKENS = 256


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str | dict = "{}"


class AssistantToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[AssistantToolCall] | None = None

    def as_template_input(self) -> dict[str, Any]:
        """The message as chat templates read it: a call's arguments as an object, not JSON text."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        message: dict[str, Any] = {"role": "system" if self.role == "developer" else self.role, "content": text}
        if self.tool_calls:
            message["tool_calls"] = [{"type": "function", "function": {"name": c.function.name,
                                                                       "arguments": _arguments(c.function.arguments)}}
                                     for c in self.tool_calls]
        return message


def _arguments(arguments: str | dict) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return arguments  # rendered as the client sent it


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
    tool_choice: str | dict | None = None
    response_format: dict | None = None
    logprobs: bool | None = None
    _tools: Tools | None = PrivateAttr(default=None)
    _reply_schema: str | None = PrivateAttr(default=None)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> list[str] | None:
        stops = [stop] if isinstance(stop, str) else stop
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops

    @model_validator(mode="after")
    def _supported(self) -> ChatCompletionRequest:
        """Refuse what the server cannot honour; keep the tools and the reply's schema, read once."""
        tools = Tools.from_request(self.tools, self.tool_choice)  # raises for tools that cannot be served
        asked = output_schema(self.response_format)  # raises for a schema the server cannot enforce
        call = tools.call_schema() if tools is not None else None
        if asked is not None and call is not None:
            raise ValueError("a forced tool call (tool_choice) and a response_format cannot both shape the reply")
        if self.logprobs:
            raise ValueError("logprobs are not supported by the local model server")
        self._tools = tools
        self._reply_schema = asked if call is None else enforceable(call, "the tools' parameters")
        return self

    def tool_spec(self) -> Tools | None:
        return self._tools

    def reply_schema(self) -> str | None:
        """The JSON Schema the reply is held to while decoding: a forced tool call's, or the
        ``response_format``'s (``None``: free text)."""
        return self._reply_schema

    def sampling_params(self) -> list[SamplingParams]:
        """One row per choice; with a seed, choice ``i`` samples with ``seed + i``."""
        max_tokens = self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS
        schema = self.reply_schema()
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


def _reply(completion: Completion, tools: Tools | None) -> tuple[dict[str, Any], str]:
    """A choice's assistant message and finish reason: with tools, the calls parsed out of
    its text (``finish_reason="tool_calls"`` when there are some)."""
    if tools is None:
        return {"role": "assistant", "content": completion.text}, completion.finish_reason
    content, calls = tools.parse(completion.text)
    if not calls:
        return {"role": "assistant", "content": content}, completion.finish_reason
    return {"role": "assistant", "content": content, "tool_calls": [c.to_openai() for c in calls]}, "tool_calls"


def completion_body(model: str, result: ChatResult, tools: Tools | None = None) -> dict:
    """A ``chat.completion`` response."""
    choices = []
    for i, c in enumerate(result.choices):
        message, finish = _reply(c, tools)
        choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
    return {**_envelope(model, "chat.completion"), "choices": choices, "usage": _usage(result)}


def stream_chunks(model: str, result: ChatResult, include_usage: bool, tools: Tools | None = None) -> list[dict]:
    """``chat.completion.chunk`` events for a finished result: each choice's message in one
    delta (its calls numbered by ``index``), then its finish reason, then (if asked) the usage."""
    head = _envelope(model, "chat.completion.chunk")
    chunks = []
    for i, c in enumerate(result.choices):
        delta, finish = _reply(c, tools)
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": k, **call} for k, call in enumerate(delta["tool_calls"])]
        chunks.append({**head, "choices": [{"index": i, "delta": delta, "finish_reason": None}]})
        chunks.append({**head, "choices": [{"index": i, "delta": {}, "finish_reason": finish}]})
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(result)})
    return chunks


def error_body(message: str, kind: str, code: str | None = None) -> dict:
    """OpenAI's error shape, so clients surface ``message`` as the exception text."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
