"""Small deterministic graphs, one per shape the introspection, recorder and replay must handle."""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, Send
from typing_extensions import TypedDict

from optimas_lg.graph.knobs import Choice, IntRange, Prompt


class QA(TypedDict, total=False):
    question: str
    query: str
    docs: list[str]
    answer: str


@dataclass
class QAConfig:
    rewrite_prompt: Annotated[str, Prompt(node="rewrite")] = "search:"
    top_k: Annotated[int, IntRange(1, 5, node="retrieve")] = 2
    style: Annotated[str, Choice(["plain", "upper"], node="answer")] = "plain"


CORPUS = ["paris is in france", "rome is in italy", "berlin is in germany", "madrid is in spain"]


def rewrite(state: QA, runtime: Runtime[QAConfig]) -> dict[str, Any]:
    """Turn the question into a search query."""
    return {"query": f"{runtime.context.rewrite_prompt} {state['question']}"}


def retrieve(state: QA, runtime: Runtime[QAConfig]) -> dict[str, Any]:
    """Rank the corpus by word overlap with the query."""
    words = set(state["query"].split())
    ranked = sorted(CORPUS, key=lambda d: (-len(words & set(d.split())), d))
    return {"docs": ranked[: runtime.context.top_k]}


def answer(state: QA, runtime: Runtime[QAConfig]) -> dict[str, Any]:
    """Answer with the first retrieved document."""
    text = state["docs"][0] if state["docs"] else ""
    return {"answer": text.upper() if runtime.context.style == "upper" else text}


def sequential(output_schema: type | None = None) -> StateGraph:
    g = StateGraph(QA, context_schema=QAConfig, output_schema=output_schema)
    g.add_node("rewrite", rewrite)
    g.add_node("retrieve", retrieve)
    g.add_node("answer", answer)
    g.add_edge(START, "rewrite")
    g.add_edge("rewrite", "retrieve")
    g.add_edge("retrieve", "answer")
    g.add_edge("answer", END)
    return g


def exact_match(example: Any, output: dict[str, Any]) -> float:
    return float(output.get("answer") == example["answer"])


class Counter(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def bump(state: Counter) -> dict[str, Any]:
    return {"n": state["n"] + 1, "log": [f"bump{state['n']}"]}


def typed_route(state: Counter) -> Literal["bump", "__end__"]:
    return "bump" if state["n"] < 3 else END


def untyped_route(state: Counter):  # no hint: targets only known at run time
    return "bump" if state["n"] < 3 else END


def conditional(typed: bool) -> StateGraph:
    g = StateGraph(Counter)
    g.add_node("bump", bump)
    g.add_edge(START, "bump")
    g.add_conditional_edges("bump", typed_route if typed else untyped_route)
    return g


@dataclass
class RouteConfig:
    limit: Annotated[int, IntRange(1, 5, node="bump")] = 3


def runtime_route(state: Counter, runtime: Runtime[RouteConfig]) -> Literal["bump", "__end__"]:
    """A router that reads a knob through its ``runtime`` argument."""
    return "bump" if state["n"] < runtime.context.limit else END


def runtime_router() -> StateGraph:
    g = StateGraph(Counter, context_schema=RouteConfig)
    g.add_node("bump", bump)
    g.add_edge(START, "bump")
    g.add_conditional_edges("bump", runtime_route)
    return g


@dataclass
class LockConfig:
    first: Annotated[int, IntRange(0, 3, node="turn_first")] = 0
    second: Annotated[int, IntRange(0, 3, node="turn_second")] = 0


def turn_first(state: Counter, runtime: Runtime[LockConfig]) -> dict[str, Any]:
    return {"n": state["n"] * 4 + runtime.context.first}


def turn_second(state: Counter, runtime: Runtime[LockConfig]) -> dict[str, Any]:
    return {"n": state["n"] * 4 + runtime.context.second}


def two_key_lock() -> StateGraph:
    """turn_first -> turn_second, one key each: from ``n`` 0 the run ends at ``4 * first +
    second``, which is 9 (``lock_opened``) only for first 2 and second 1, so no change to
    one node's knob helps on its own."""
    g = StateGraph(Counter, context_schema=LockConfig)
    g.add_node("turn_first", turn_first)
    g.add_node("turn_second", turn_second)
    g.add_edge(START, "turn_first")
    g.add_edge("turn_first", "turn_second")
    return g


def lock_opened(example: Any, output: dict[str, Any]) -> float:
    return float(output["n"] == 9)


@dataclass
class DeskConfig:
    route_odd: Annotated[str, Choice(["no", "yes"], node="triage")] = "no"
    bonus: Annotated[int, IntRange(0, 3, node="odd_desk")] = 0


def triage(state: Counter) -> dict[str, Any]:
    return {"log": ["triage"]}


def to_desk(state: Counter, runtime: Runtime[DeskConfig]) -> Literal["odd_desk", "__end__"]:
    return "odd_desk" if runtime.context.route_odd == "yes" and state["n"] % 2 else END


def odd_desk(state: Counter, runtime: Runtime[DeskConfig]) -> dict[str, Any]:
    return {"n": state["n"] + runtime.context.bonus, "log": ["odd_desk"]}


def odd_desk_graph() -> StateGraph:
    """triage -> odd_desk for odd ``n`` once ``route_odd`` is on: a node the defaults never
    reach, and one that an accepted change reaches on some examples only (``desk_served``)."""
    g = StateGraph(Counter, context_schema=DeskConfig)
    g.add_node("triage", triage)
    g.add_node("odd_desk", odd_desk)
    g.add_edge(START, "triage")
    g.add_conditional_edges("triage", to_desk)
    return g


def desk_served(example: Any, output: dict[str, Any]) -> float:
    """An even ``n`` is served as it is; an odd one earns 0.5 at the desk and 0.5 more with ``n + 2``."""
    n = example.inputs["n"]
    if n % 2 == 0:
        return float(output["n"] == n)
    return 0.5 * ("odd_desk" in output["log"]) + 0.5 * (output["n"] == n + 2)


@dataclass
class MemoConfig:
    bonus: Annotated[int, IntRange(0, 5, node="remember")] = 0


def remember(state: Counter, runtime: Runtime[MemoConfig]) -> dict[str, Any]:
    """Answer from the store when it remembers ``n``, else compute and remember (long-term memory)."""
    base = runtime.store.get(("config",), "base").value["base"]
    if (item := runtime.store.get(("memo",), str(state["n"]))) is not None:
        return {"n": item.value["n"], "log": ["remembered"]}
    runtime.store.put(("memo",), str(state["n"]), {"n": base + state["n"] + runtime.context.bonus})
    return {"n": base + state["n"] + runtime.context.bonus, "log": ["computed"]}


def memo_store() -> Any:
    """prepare -> remember, compiled with its own store, which holds one item before any run."""
    from langgraph.store.memory import InMemoryStore

    store = InMemoryStore()
    store.put(("config",), "base", {"base": 100})
    g = StateGraph(Counter, context_schema=MemoConfig)
    g.add_node("prepare", lambda state: {"log": ["prepared"]})
    g.add_node("remember", remember)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "remember")
    return g.compile(store=store)


def conditional_path_map() -> StateGraph:
    g = StateGraph(Counter)
    g.add_node("bump", bump)
    g.add_edge(START, "bump")
    g.add_conditional_edges("bump", untyped_route, {"bump": "bump", END: END})
    return g


def parallel() -> StateGraph:
    """a fans out to b and c; d waits for both (a join edge)."""
    g = StateGraph(Counter)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"], "n": 1})
    g.add_node("c", lambda s: {"log": ["c"]})
    g.add_node("d", lambda s: {"log": [f"d{len(s['log'])}"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge(["b", "c"], "d")
    g.add_edge("d", END)
    return g


class MapState(TypedDict, total=False):
    topic: str
    items: list[str]
    results: Annotated[list[str], operator.add]
    summary: str


def split(state: MapState) -> dict[str, Any]:
    return {"items": [f"{state['topic']}-{i}" for i in range(3)]}


def fan_out(state: MapState) -> list[Send]:
    return [Send("work", {"item": item}) for item in state["items"]]


def work(arg: dict[str, Any]) -> dict[str, Any]:
    return {"results": [arg["item"].upper()]}


def reduce_(state: MapState) -> dict[str, Any]:
    return {"summary": "|".join(state["results"])}


def map_reduce() -> StateGraph:
    g = StateGraph(MapState)
    g.add_node("split", split)
    g.add_node("work", work)
    g.add_node("reduce", reduce_)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", fan_out, ["work"])
    g.add_edge("work", "reduce")
    g.add_edge("reduce", END)
    return g


def with_subgraph() -> StateGraph:
    inner = StateGraph(Counter)
    inner.add_node("double", lambda s: {"n": s["n"] * 2, "log": ["double"]})
    inner.add_edge(START, "double")
    g = StateGraph(Counter)
    g.add_node("bump", bump)
    g.add_node("sub", inner.compile())
    g.add_edge(START, "bump")
    g.add_edge("bump", "sub")
    g.add_edge("sub", END)
    return g


def commands(typed: bool) -> StateGraph:
    def decide(state: Counter) -> Command[Literal["left", "right"]]:
        """Route with Command instead of an edge."""
        return Command(update={"log": ["decide"]}, goto="left" if state["n"] % 2 == 0 else "right")

    def decide_untyped(state: Counter) -> Command:
        return Command(update={"log": ["decide"]}, goto="left" if state["n"] % 2 == 0 else "right")

    g = StateGraph(Counter)
    g.add_node("decide", decide if typed else decide_untyped)
    g.add_node("left", lambda s: {"log": ["left"]})
    g.add_node("right", lambda s: {"log": ["right"]})
    g.add_edge(START, "decide")
    return g


def parent_command() -> StateGraph:
    """A subgraph node that leaves by routing its parent: ``Command(graph=PARENT)``."""
    inner = StateGraph(Counter)
    inner.add_node("pick", lambda s: Command(graph=Command.PARENT, goto="done", update={"n": s["n"] + 5,
                                                                                        "log": ["pick"]}))
    inner.add_edge(START, "pick")
    g = StateGraph(Counter)
    g.add_node("sub", inner.compile())
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(START, "sub")
    g.add_edge("done", END)
    return g


async def slow_bump(state: Counter) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"n": state["n"] + 1, "log": ["async"]}


def async_graph(output_schema: type | None = None) -> StateGraph:
    g = StateGraph(Counter, output_schema=output_schema)
    g.add_node("first", slow_bump)
    g.add_node("second", slow_bump)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    return g


FLAKY: dict[str, int] = {}


def flaky(state: Counter) -> dict[str, Any]:
    """Fails on the first attempt for each n, then succeeds (exercises retries)."""
    FLAKY[str(state["n"])] = FLAKY.get(str(state["n"]), 0) + 1
    if FLAKY[str(state["n"])] == 1:
        raise ValueError("transient")
    return {"n": state["n"] + 1}


def boom(state: Counter) -> dict[str, Any]:
    if state["n"] == 13:
        raise RuntimeError("unlucky number 13")
    return {"n": state["n"] + 1}


def finished(example: Any, output: dict[str, Any]) -> float:
    """1 for every run that finished (the failing graph's metric)."""
    return 1.0


def failing() -> StateGraph:
    g = StateGraph(Counter)
    g.add_node("boom", boom)
    g.add_edge(START, "boom")
    return g


def retrying() -> StateGraph:
    g = StateGraph(Counter)
    policy = RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False, retry_on=ValueError)
    g.add_node("flaky", flaky, retry_policy=policy)
    g.add_edge(START, "flaky")
    return g


@dataclass
class LegacyConfig:
    suffix: Annotated[str, Prompt(node="shout")] = "!"


def shout(state: QA, config: RunnableConfig) -> dict[str, Any]:
    """An older agent: reads its knob from config["configurable"]."""
    return {"answer": state["question"].upper() + config["configurable"]["suffix"]}


def legacy() -> StateGraph:
    g = StateGraph(QA, context_schema=LegacyConfig)
    g.add_node("shout", shout)
    g.add_edge(START, "shout")
    return g


class ScriptedChat(BaseChatModel):
    """A deterministic fake chat model for ``create_agent``: calls ``add(2, 3)`` until a tool
    result is in the conversation, then answers with that result."""

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            message = AIMessage(str(results[-1].content))
        else:
            message = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1"}])
        message.usage_metadata = {"input_tokens": len(messages), "output_tokens": 1,
                                  "total_tokens": len(messages) + 1}
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChat":
        return self


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def react_agent() -> Any:
    """A ReAct loop (``langchain.agents.create_agent``): model -> tools -> model -> end."""
    from langchain.agents import create_agent

    return create_agent(ScriptedChat(), tools=[add])
