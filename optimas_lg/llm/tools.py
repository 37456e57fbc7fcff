"""Tool calling on local models, in the Hermes format most open chat models were taught.

An agent built with ``llm.bind_tools(...)`` or ``create_react_agent`` sends ``tools``, then
assistant messages carrying ``tool_calls`` and ``tool`` messages with their results. The
server renders them for the model: with the model's own chat template when it knows tools
(Qwen2.5's does), otherwise in the same format by hand: the tools' signatures in a system
message, each call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, each
result as ``<tool_response>...</tool_response>`` in a user turn. The completion's
``<tool_call>`` blocks become OpenAI ``tool_calls``.

``tool_choice="auto"`` (the default) lets the model decide: a reply without a valid
block (or a bare call's JSON) is plain content. ``"required"`` or a named function makes the reply a call: the
prompt ends in an open ``<tool_call>`` and the JSON that follows is held to the tools'
argument schemas while decoding (``llm.structured``). ``"none"`` renders the tools but
never parses a call.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_CALL = re.compile(re.escape(CALL_OPEN) + r"\s*(\{.*?\})\s*(?:" + re.escape(CALL_CLOSE) + r"|$)", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments)}}


@dataclass(frozen=True)
class Tools:
    """A request's tools (OpenAI ``function`` specs) and its ``tool_choice``."""

    functions: tuple[dict[str, Any], ...]
    choice: str | dict[str, Any] = "auto"

    @classmethod
    def from_request(cls, tools: list[dict[str, Any]] | None, choice: str | dict[str, Any] | None) -> Tools | None:
        """Check a request's ``tools`` and ``tool_choice`` (raises ``ValueError`` saying what is wrong)."""
        if not tools:
            if choice not in (None, "none", "auto"):
                raise ValueError("tool_choice needs tools")
            return None
        functions = []
        for i, tool in enumerate(tools):
            function = tool.get("function") if tool.get("type", "function") == "function" else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise ValueError(f"tools[{i}] is not a function tool with a name")
            functions.append(function)
        found = cls(tuple(functions), "auto" if choice is None else choice)
        if isinstance(found.choice, dict):
            name = (found.choice.get("function") or {}).get("name")
            if name not in found.names:
                raise ValueError(f"tool_choice names {name!r}, which is not among the tools {list(found.names)}")
        elif found.choice not in ("none", "auto", "required"):
            raise ValueError(f"tool_choice {found.choice!r} is not none, auto, required or a named function")
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.functions)

    @property
    def forced(self) -> tuple[dict[str, Any], ...]:
        """The functions the reply must call one of (empty: the model may answer in text)."""
        if isinstance(self.choice, dict):
            return tuple(f for f in self.functions if f["name"] == self.choice["function"]["name"])
        return self.functions if self.choice == "required" else ()

    def call_schema(self) -> dict[str, Any] | None:
        """The JSON Schema of a forced call: ``{"name": one of them, "arguments": its parameters}``."""
        if not self.forced:
            return None
        variants = [{"type": "object", "required": ["name", "arguments"],
                     "properties": {"name": {"type": "string", "enum": [f["name"]]},
                                    "arguments": f.get("parameters") or {"type": "object"}}} for f in self.forced]
        return variants[0] if len(variants) == 1 else {"anyOf": variants}

    @property
    def prefill(self) -> str:
        """What the assistant's turn starts with: an open call when the reply must be one."""
        return CALL_OPEN + "\n" if self.forced else ""

    def parse(self, text: str) -> tuple[str | None, list[ToolCall]]:
        """A completion as (content, calls). A forced reply is the call's JSON alone; otherwise
        each ``<tool_call>`` block naming a tool becomes a call and the text before the
        first one is the content (``None`` when empty). A reply that is nothing but one
        call's JSON (in a code fence or not: small models drop the tags) is that call.
        Blocks that are not a valid call of a known tool stay in the content, as the
        model wrote them."""
        if self.choice == "none":
            return text, []
        if self.forced:
            text = CALL_OPEN + text
        calls, first = [], None
        for match in _CALL.finditer(text):
            call = _call(match.group(1), self.names)
            if call is not None:
                calls.append(call)
                first = match.start() if first is None else first
        if not calls:
            bare = _call(_FENCE.sub("", text.strip()), self.names)
            return (None, [bare]) if bare is not None else (text, [])
        content = text[:first].strip()
        return content or None, calls


def _call(body: str, names: tuple[str, ...]) -> ToolCall | None:
    try:
        found = json.loads(body)
    except ValueError:
        return None
    if not isinstance(found, dict) or found.get("name") not in names:
        return None
    arguments = found.get("arguments", {})
    return ToolCall(found["name"], arguments) if isinstance(arguments, dict) else None


def knows_tools(tokenizer: Any) -> bool:
    """Whether the model's chat template renders ``tools`` itself."""
    return "tools" in (tokenizer.chat_template or "")


def hermes_messages(messages: list[dict[str, Any]], tools: Tools | None) -> list[dict[str, Any]]:
    """``messages`` for a chat template that knows no tools: the tools described in the
    system message, calls and results written out in the Hermes format."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            blocks = [f"{CALL_OPEN}\n{json.dumps(c['function'])}\n{CALL_CLOSE}" for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(filter(None, [message.get("content"), *blocks]))})
        elif message["role"] == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        else:
            out.append({"role": message["role"], "content": message.get("content") or ""})
    if tools is None:
        return out
    system = _tools_prompt(tools)
    if out and out[0]["role"] == "system":
        return [{"role": "system", "content": f"{out[0]['content']}\n\n{system}"}, *out[1:]]
    return [{"role": "system", "content": system}, *out]


def _tools_prompt(tools: Tools) -> str:
    signatures = "\n".join(json.dumps({"type": "function", "function": f}) for f in tools.functions)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{signatures}\n"
            "</tools>\n\nFor each function call, return a json object with function name and arguments within "
            f"{CALL_OPEN}{CALL_CLOSE} XML tags:\n{CALL_OPEN}\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n' + CALL_CLOSE)
