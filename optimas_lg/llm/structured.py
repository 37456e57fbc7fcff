"""Structured outputs: a completion held to a JSON Schema token by token.

OpenAI's ``response_format`` asks for JSON (``json_object``) or for a document of a
given schema (``json_schema``). Clients rely on it: LangChain's
``with_structured_output(method="json_schema" or "json_mode")``, the OpenAI SDK's
``parse``, and the server's own forced tool calls (``llm.tools``). A 135M model asked for JSON in
the prompt alone often writes something else, so the server enforces it instead:
lm-format-enforcer parses the text so far character by character, and at each step only
the tokens that keep it a valid prefix of a document of the schema may be chosen (the
end of sequence only once the document is complete). A completion cut by ``max_tokens``
is an unfinished document, as with OpenAI (``finish_reason="length"``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from lmformatenforcer import JsonSchemaParser, TokenEnforcer
from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

ANY_OBJECT: dict[str, Any] = {"type": "object"}
"""What ``{"type": "json_object"}`` asks for: a JSON object, any keys."""


def output_schema(response_format: dict[str, Any] | None) -> str | None:
    """The JSON Schema a request's ``response_format`` asks for, as canonical JSON text
    (hashable, so it keys the response cache), or ``None`` for free text.

    Raises ``ValueError`` naming what is wrong with a format the server cannot enforce.
    """
    if not response_format or response_format.get("type", "text") == "text":
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        schema: Any = ANY_OBJECT
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ValueError("response_format json_schema needs json_schema.schema, a JSON Schema object")
    else:
        raise ValueError(f"response_format type {kind!r} is not one of text, json_object, json_schema")
    return enforceable(schema, "response_format schema")


JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def enforceable(schema: dict[str, Any], what: str) -> str:
    """``schema`` as canonical JSON text once the enforcer can read it; raises ``ValueError``
    naming ``what`` otherwise. Checked before decoding: the enforcer reads a nested schema
    only when decoding reaches it, and a failure there would cut the reply short."""
    try:
        _check_types(schema, "")
        JsonSchemaParser(schema).get_allowed_characters()
    except Exception as exc:  # noqa: BLE001 - the enforcer raises whatever its schema reader hits
        raise ValueError(f"{what} cannot be enforced: {exc}") from exc
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _check_types(node: Any, where: str) -> None:
    """Every ``type`` in the schema is a JSON Schema type (``where``: its path, for the message)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_types(item, f"{where}/{i}")
    elif isinstance(node, dict):
        kinds = node.get("type")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if isinstance(kinds, (str, list)) and kind not in JSON_TYPES:
                raise ValueError(f"{where or '/'}: type {kind!r} is not a JSON Schema type")
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples"):  # values, not schemas
                _check_types(value, f"{where}/{key}")


class JsonConstraint:
    """One completion's constraint: the token ids allowed next, given those chosen so far."""

    def __init__(self, tokenizer: Any, eos: set[int], schema: str):
        self._enforcer = TokenEnforcer(_tokenizer_data(tokenizer, eos), JsonSchemaParser(json.loads(schema)))

    def allowed(self, tokens: list[int]) -> list[int]:
        return list(self._enforcer.get_allowed_tokens(tokens).allowed_tokens)


_DATA: dict[Any, TokenEnforcerTokenizerData] = {}  # per tokenizer; kept as long as the server keeps its model
_DATA_LOCK = threading.Lock()


def _tokenizer_data(tokenizer: Any, eos: set[int]) -> TokenEnforcerTokenizerData:
    """The enforcer's view of a vocabulary (each token's text, and whether it starts a word),
    built once per tokenizer: a second or two for SmolLM2's 49k tokens."""
    with _DATA_LOCK:
        if tokenizer not in _DATA:
            zero = tokenizer.encode("0", add_special_tokens=False)[-1]
            special = set(tokenizer.all_special_ids)
            regular = []
            for token in range(len(tokenizer)):
                if token in special:
                    continue
                # decoded after a "0" token, a word-start token keeps its leading space
                after_zero, alone = tokenizer.decode([zero, token])[1:], tokenizer.decode([token])
                regular.append((token, after_zero, len(after_zero) > len(alone)))
            _DATA[tokenizer] = TokenEnforcerTokenizerData(
                regular, lambda ids: tokenizer.decode(ids).rstrip("\ufffd"), sorted(eos), False, len(tokenizer))
        return _DATA[tokenizer]
