"""text(x, y): how one node call is shown to the LRF backbone.

A conversation (``MessagesState``) reads as ``role: text`` lines, not as message reprs.

The backbone sees a bounded number of tokens, and a long retrieved context must not push
the node's output out of view: the budget is split between what the node read and what it
wrote, and long values lose their middle (the start and end of a text say the most).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.types import Command

from optimas_lg.errors import LRFError
from optimas_lg.lrf.pairs import canonical_json

ELLIPSIS = " ... "
DESCRIPTION_SHARE = 8  # when space is short, the description keeps at most 1/8 of it
_FIT_ATTEMPTS = 5


def _message_text(message: BaseMessage) -> str:
    calls = "".join(f" [calls {c['name']}({canonical_json(c['args'])})]" for c in getattr(message, "tool_calls", []))
    return f"{message.name or message.type}: {message.text}{calls}"


def _as_text(value: Any) -> str:
    """Strings as they are; messages (and a conversation) as ``role: text`` lines; the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return _message_text(value)
    if isinstance(value, list) and value and all(isinstance(v, BaseMessage) for v in value):
        return "\n".join(_message_text(v) for v in value)
    return canonical_json(value)


def _spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character span of each token of ``text`` (fast tokenizers only)."""
    if not text:
        return []
    try:
        return tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except NotImplementedError as exc:
        raise LRFError("the LRF needs a fast tokenizer (with offset mappings), "
                       f"got {type(tokenizer).__name__}") from exc


def _truncate_middle(text: str, spans: list[tuple[int, int]], cap: int, marker_tokens: int) -> str:
    """Keep ``cap`` tokens' worth of ``text``: its head and tail around an ellipsis."""
    if len(spans) <= cap:
        return text
    if cap <= 0:
        return ""
    keep = cap - marker_tokens
    if keep < 2:
        return text[: spans[cap - 1][1]]
    tail = keep // 2
    head = keep - tail
    return text[: spans[head - 1][1]] + ELLIPSIS + text[spans[len(spans) - tail][0] :]


def _fair_caps(lengths: list[int], budget: int) -> list[int]:
    """Water-filling: short values keep all their tokens, long ones share the rest equally."""
    caps = [0] * len(lengths)
    remaining = budget
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for done, i in enumerate(order):
        caps[i] = min(lengths[i], remaining // (len(order) - done))
        remaining -= caps[i]
    return caps


def _split(rest: int, in_need: int, out_need: int) -> tuple[int, int]:
    """Half the budget each; a side that needs less gives its spare to the other."""
    half = rest // 2
    if in_need <= half:
        return in_need, rest - in_need
    if out_need <= rest - half:
        return rest - out_need, out_need
    return half, rest - half


def _render(node: str, description: str, inputs: dict[str, str], output: dict[str, str]) -> str:
    lines = [f"node: {node}", f"role: {description}", "reads:"]
    lines += [f"- {key}: {value}" for key, value in inputs.items()] or ["- (nothing)"]
    lines.append("writes:")
    lines += [f"- {key}: {value}" for key, value in output.items()] or ["- (nothing)"]
    return "\n".join(lines)


def written(output: Any) -> dict:
    """The state update a node's return value writes: an update dict, a ``Command``'s
    update, or several merged in order (``create_agent``'s model node returns ``[Command]``)."""
    if isinstance(output, Command):
        return written(output.update)
    if output is None:
        return {}
    if isinstance(output, dict):
        return output
    if isinstance(output, (list, tuple)):
        if all(isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) for o in output):
            return dict(output)  # a Command's update as (key, value) pairs
        merged: dict = {}
        for part in output:
            merged.update(written(part))
        return merged
    return {"output": output}


def serialize(node: str, description: str, inputs: dict, output: Any, tokenizer: Any, max_tokens: int) -> str:
    """The text of one node call (name, role, state keys read, what it wrote) in at most
    ``max_tokens`` tokens including the tokenizer's special tokens."""
    in_text = {str(k): _as_text(v) for k, v in inputs.items()}
    out_text = {str(k): _as_text(v) for k, v in written(output).items()}
    budget = max_tokens - tokenizer.num_special_tokens_to_add()
    skeleton = _render(node, "", dict.fromkeys(in_text, ""), dict.fromkeys(out_text, ""))
    avail = budget - len(_spans(tokenizer, skeleton))
    if avail < 2:
        raise LRFError(
            f"max_tokens={max_tokens} cannot even hold the names of node {node!r} and its "
            f"{len(in_text) + len(out_text)} state keys: raise LRFConfig.max_tokens"
        )
    marker_tokens = len(_spans(tokenizer, ELLIPSIS))
    desc_spans = _spans(tokenizer, description)
    in_spans = [_spans(tokenizer, v) for v in in_text.values()]
    out_spans = [_spans(tokenizer, v) for v in out_text.values()]
    in_need, out_need = sum(map(len, in_spans)), sum(map(len, out_spans))
    for _ in range(_FIT_ATTEMPTS):
        desc_cap = min(len(desc_spans), max(avail // DESCRIPTION_SHARE, avail - in_need - out_need))
        in_budget, out_budget = _split(avail - desc_cap, in_need, out_need)
        in_caps = _fair_caps([len(s) for s in in_spans], in_budget)
        out_caps = _fair_caps([len(s) for s in out_spans], out_budget)
        text = _render(
            node,
            _truncate_middle(description, desc_spans, desc_cap, marker_tokens),
            {k: _truncate_middle(v, s, c, marker_tokens)
             for (k, v), s, c in zip(in_text.items(), in_spans, in_caps)},
            {k: _truncate_middle(v, s, c, marker_tokens)
             for (k, v), s, c in zip(out_text.items(), out_spans, out_caps)},
        )
        excess = len(_spans(tokenizer, text)) - budget
        if excess <= 0:
            return text
        avail -= excess  # tokens merged or split differently at the seams: shrink and refit
    raise LRFError(f"could not fit the call of node {node!r} into {max_tokens} tokens")
