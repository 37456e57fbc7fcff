"""An order-support agent written the way LangGraph users write them (issue 13).

* state: a ``MessagesState`` subclass (LangChain messages, the ``add_messages`` reducer);
* knobs: a pydantic context schema, knobs declared with ``typing.Annotated``;
* ``triage``: an async node that calls a chat model (``MODEL``, built at import time as
  agents do; tests swap it) or, under ``intent_source="keywords"``, reads keywords;
* a conditional edge from ``triage`` to ``lookup``, ``refund_desk`` or ``fallback``;
* ``lookup``: a compiled subgraph (``fetch`` -> ``match``) whose builder shares the
  parent's ``context_schema``, with two numeric knobs that only pay off together;
* ``refund_desk``: never reached under the default knobs (``FakeTriageChat`` calls every
  message a status question unless the triage prompt mentions refunds).

Headroom (measured on ``examples()``): the defaults score 0.083; the lookup knobs alone
reach 0.5 at ``history_window >= 3`` and ``match_slack >= 2`` (either alone: at most
0.25); adding ``intent_source="keywords"`` and ``refund_policy="approve"`` scores 1.0.
"""

from __future__ import annotations

import asyncio
import random
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from optimas_lg import Choice, IntRange, Prompt
from optimas_lg.data import Example

ITEMS = ["kettle", "lamp", "scarf", "drill", "teapot", "backpack", "helmet", "blender"]
STATUSES = ["shipped", "delivered", "packed", "delayed"]
CUSTOMERS = [f"c{i}" for i in range(8)]
HUMAN = "A human agent will contact you."
REFUND = "Refund issued for order"
NOT_FOUND = "I could not find that order."


class SupportConfig(BaseModel):
    """The knobs of the support agent (the graph's and the lookup subgraph's context)."""

    triage_prompt: Annotated[str, Prompt(node="triage")] = "Classify the customer message."
    intent_source: Annotated[str, Choice(["llm", "keywords"], node="triage")] = "llm"
    history_window: Annotated[int, IntRange(1, 5, node="lookup")] = 2
    match_slack: Annotated[int, IntRange(0, 3, node="lookup")] = 1
    refund_policy: Annotated[str, Choice(["review", "approve"], node="refund_desk")] = "review"


class OrderState(MessagesState):
    customer: str
    intent: str


class LookupState(OrderState):
    candidates: list[dict[str, Any]]


def _orders() -> dict[str, list[dict[str, Any]]]:
    """Each customer's orders, most recent first (five distinct items, increasing ages)."""
    rng = random.Random(13)
    out = {}
    for customer in CUSTOMERS:
        items = rng.sample(ITEMS, 5)
        ages = sorted(rng.sample(range(2, 40), 5))
        out[customer] = [{"id": f"{customer}-{i}", "item": item, "age": age, "status": rng.choice(STATUSES)}
                         for i, (item, age) in enumerate(zip(items, ages))]
    return out


ORDERS = _orders()


class FakeTriageChat(BaseChatModel):
    """A deterministic stand-in for a small chat model: it answers ``status`` to everything
    unless its system prompt mentions refunds, then spots refund requests. Like a real chat
    model it names its ``model`` (LangChain reports it as ``ls_model_name``)."""

    model: str = "fake-triage"

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        system = " ".join(str(m.content) for m in messages if isinstance(m, SystemMessage)).lower()
        text = str(messages[-1].content).lower()
        refund = "refund" in system and ("refund" in text or "money back" in text)
        return AIMessage("refund" if refund else "status",
                         usage_metadata={"input_tokens": len(text.split()), "output_tokens": 1, "total_tokens": 0})

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        await asyncio.sleep(0)
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    @property
    def _llm_type(self) -> str:
        return "fake-triage"


MODEL: BaseChatModel = FakeTriageChat()


def _config(runtime: Runtime[SupportConfig]) -> SupportConfig:
    return runtime.context if runtime.context is not None else SupportConfig()


def _parse_intent(reply: str) -> str:
    reply = reply.lower()
    if "refund" in reply:
        return "refund"
    return "status" if "status" in reply or "order" in reply else "other"


def _keyword_intent(text: str) -> str:
    text = text.lower()
    if "refund" in text or "money back" in text:
        return "refund"
    return "status" if "where" in text or "status" in text else "other"


async def triage(state: OrderState, runtime: Runtime[SupportConfig]) -> dict[str, Any]:
    """Decide what the customer wants: an order's status, a refund, or something else."""
    cfg = _config(runtime)
    text = str(state["messages"][-1].content)
    if cfg.intent_source == "keywords":
        return {"intent": _keyword_intent(text)}
    reply = await MODEL.ainvoke([SystemMessage(cfg.triage_prompt), HumanMessage(text)])
    return {"intent": _parse_intent(str(reply.content))}


def route(state: OrderState) -> Literal["lookup", "refund_desk", "fallback"]:
    """Status questions go to the order lookup, refunds to the refund desk, the rest to a human."""
    return {"status": "lookup", "refund": "refund_desk"}.get(state["intent"], "fallback")


def _mentioned(text: str) -> tuple[str | None, int | None]:
    """The item and the age in days ("about N days ago") a message mentions."""
    words = text.lower().replace("?", " ").replace(".", " ").split()
    item = next((w for w in words if w in ITEMS), None)
    age = next((int(w) for w, nxt in zip(words, words[1:]) if w.isdigit() and nxt == "days"), None)
    return item, age


def fetch(state: LookupState, runtime: Runtime[SupportConfig]) -> dict[str, Any]:
    """Load the customer's most recent orders (``history_window`` of them)."""
    return {"candidates": ORDERS.get(state["customer"], [])[: _config(runtime).history_window]}


def match(state: LookupState, runtime: Runtime[SupportConfig]) -> dict[str, Any]:
    """Find the order the customer means: same item, ordered within ``match_slack`` days of when they say."""
    item, age = _mentioned(str(state["messages"][-1].content))
    slack = _config(runtime).match_slack
    found = [o for o in state["candidates"] if o["item"] == item and age is not None and abs(o["age"] - age) <= slack]
    if not found:
        return {"messages": [AIMessage(NOT_FOUND)]}
    order = found[0]
    return {"messages": [AIMessage(f"Your {order['item']} (order {order['id']}) is {order['status']}.")]}


def refund_desk(state: OrderState, runtime: Runtime[SupportConfig]) -> dict[str, Any]:
    """Handle a refund request under the refund policy."""
    item, _ = _mentioned(str(state["messages"][-1].content))
    order = next((o for o in ORDERS.get(state["customer"], []) if o["item"] == item), None)
    if order is None:
        return {"messages": [AIMessage(NOT_FOUND)]}
    if _config(runtime).refund_policy == "approve":
        return {"messages": [AIMessage(f"{REFUND} {order['id']}.")]}
    return {"messages": [AIMessage("Your refund request is under review.")]}


def fallback(state: OrderState) -> dict[str, Any]:
    """Hand anything else to a person."""
    return {"messages": [AIMessage(HUMAN)]}


def lookup_builder() -> StateGraph:
    sub = StateGraph(LookupState, context_schema=SupportConfig)
    sub.add_node("fetch", fetch)
    sub.add_node("match", match)
    sub.add_edge(START, "fetch")
    sub.add_edge("fetch", "match")
    sub.add_edge("match", END)
    return sub


def build() -> StateGraph:
    g = StateGraph(OrderState, context_schema=SupportConfig)
    g.add_node("triage", triage)
    g.add_node("lookup", lookup_builder().compile())
    g.add_node("refund_desk", refund_desk)
    g.add_node("fallback", fallback)
    g.add_edge(START, "triage")
    g.add_conditional_edges("triage", route)
    g.add_edge("lookup", END)
    g.add_edge("refund_desk", END)
    g.add_edge("fallback", END)
    return g


graph = build().compile()


def examples(n: int = 24, seed: int = 0) -> list[Example]:
    """Customer messages with the text the final reply must contain (label ``expect``).

    Half ask where an order is (its recency rank 0-2, the age given off by up to 2 days),
    a third ask for a refund, the rest for something no node handles.
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        customer = rng.choice(CUSTOMERS)
        kind = ("status", "status", "status", "refund", "refund", "other")[i % 6]
        order = ORDERS[customer][rng.randrange(3)]
        if kind == "status":
            said = max(1, order["age"] + rng.randint(-2, 2))
            text = f"Where is my {order['item']}? I ordered it about {said} days ago."
            expect = f"is {order['status']}"
        elif kind == "refund":
            text = f"The {order['item']} broke. I want a refund."
            expect = f"{REFUND} {order['id']}"
        else:
            text = "Can I change my delivery address?"
            expect = HUMAN
        out.append(Example(f"m{i}", {"customer": customer, "messages": [{"role": "user", "content": text}]},
                           {"expect": expect}))
    return out


def resolved(example: Example, output: dict[str, Any]) -> float:
    """1.0 when the last reply contains the expected text."""
    return float(example["expect"] in str(output["messages"][-1].content))
