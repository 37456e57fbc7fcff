"""The code-generation graph: ``coder`` and ``tester`` in parallel, then ``execute``, then ``select``.

``coder`` writes ``n_candidates`` programs for the problem (the first greedily, the rest
sampled at ``temperature``); ``tester`` gathers tests: the docstring's own examples, or
``assert`` lines a model writes, or both; ``execute`` runs every candidate against the
tests in the sandbox; ``select`` keeps the candidate that passed most and, when it still
fails a test, asks a model to repair it with the failure message, keeping the repair
only if it passes more tests. This is the shape of the paper's BigCodeBench system (code
generator, unit-test generator, executor, final code generator) on HumanEval problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableParallel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.humaneval.programs import Case, Report, assert_tests, doctest_tests, program, run_tests
from optimas_lg.graph.knobs import Choice, FloatRange, IntRange, Prompt
from optimas_lg.llm import chat_model
from optimas_lg.llm.registry import known_models

LOCAL_MODEL = "local/smollm2-135m"
MODELS = list(dict.fromkeys([LOCAL_MODEL, *known_models()]))  # Qwen2.5-Coder when its wheels are installed
TESTER_MAX_TOKENS = 192


class State(TypedDict, total=False):
    prompt: str  # the function's signature and docstring
    entry_point: str  # the function's name
    candidates: list[str]  # runnable programs
    tests: list[dict[str, str]]  # Case fields (call, expected)
    reports: list[dict[str, Any]]  # one Report per candidate, in order
    program: str  # the final program
    repaired: bool


@dataclass
class AgentConfig:
    """The knobs optimas-lg may tune; a node reads the ones for it from ``runtime.context``."""

    coder_prompt: Annotated[str, Prompt(node="coder")] = (
        "You are an expert Python programmer. Complete the function below. Reply with the "
        "complete function in a Python code block.")
    coder_model: Annotated[str, Choice(MODELS, node="coder")] = LOCAL_MODEL
    n_candidates: Annotated[int, IntRange(1, 5, node="coder")] = 1
    temperature: Annotated[float, FloatRange(0.0, 1.2, node="coder")] = 0.8
    max_tokens: Annotated[int, IntRange(96, 768, node="coder")] = 256
    tester_prompt: Annotated[str, Prompt(node="tester")] = (
        "Write unit tests for the function below: 3 to 5 lines, each of the form "
        "`assert function_name(arguments) == expected_result`.")
    tester_model: Annotated[str, Choice(MODELS, node="tester")] = LOCAL_MODEL
    test_source: Annotated[str, Choice(["docstring", "generated", "both"], node="tester")] = "docstring"
    repair_prompt: Annotated[str, Prompt(node="select")] = (
        "The Python function below fails a test. Fix it. Reply with the complete corrected "
        "function in a Python code block.")
    repair_model: Annotated[str, Choice(MODELS, node="select")] = LOCAL_MODEL
    repair_rounds: Annotated[int, IntRange(0, 2, node="select")] = 1


def _config(runtime: Runtime[AgentConfig]) -> AgentConfig:
    return runtime.context or AgentConfig()


def _problem(state: State) -> str:
    return f"```python\n{state['prompt'].rstrip()}\n```"


def coder(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Write candidate programs: one greedy, the others sampled with seeds 1, 2, ..."""
    config = _config(runtime)
    messages = [SystemMessage(config.coder_prompt), HumanMessage(_problem(state))]
    models = [chat_model(config.coder_model, temperature=0.0, max_tokens=config.max_tokens)]
    models += [chat_model(config.coder_model, temperature=config.temperature, max_tokens=config.max_tokens, seed=i)
               for i in range(1, config.n_candidates)]
    # requested together, so the model server batches them
    replies = RunnableParallel({str(i): m for i, m in enumerate(models)}).invoke(messages).values()
    return {"candidates": [program(state["prompt"], state["entry_point"], str(r.content)) for r in replies]}


def tester(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Gather tests: the docstring's examples, a model's ``assert`` lines, or both."""
    config = _config(runtime)
    tests: list[Case] = []
    if config.test_source in ("docstring", "both"):
        tests += doctest_tests(state["prompt"], state["entry_point"])
    if config.test_source in ("generated", "both"):
        llm = chat_model(config.tester_model, temperature=0.0, max_tokens=TESTER_MAX_TOKENS)
        reply = llm.invoke([SystemMessage(config.tester_prompt), HumanMessage(_problem(state))])
        tests += [t for t in assert_tests(str(reply.content), state["entry_point"]) if t not in tests]
    return {"tests": [{"call": t.call, "expected": t.expected} for t in tests]}


def _tests(state: State) -> list[Case]:
    return [Case(**t) for t in state.get("tests", [])]


def execute(state: State) -> State:
    """Run every candidate against the tests, each in its own sandboxed process."""
    tests = _tests(state)
    return {"reports": [vars(run_tests(c, tests)) for c in state["candidates"]]}


def select(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Keep the candidate that passed most tests (the first on ties); repair it while it fails."""
    config = _config(runtime)
    reports = [Report(**r) for r in state["reports"]]
    best = max(range(len(reports)), key=lambda i: reports[i].passed)
    current, report, repaired = state["candidates"][best], reports[best], False
    tests = _tests(state)
    for _ in range(config.repair_rounds if tests else 0):
        if report.error is None:
            break
        llm = chat_model(config.repair_model, temperature=0.0, max_tokens=config.max_tokens)
        content = f"```python\n{current.rstrip()}\n```\n\nFailure: {report.error}"
        reply = llm.invoke([SystemMessage(config.repair_prompt), HumanMessage(content)])
        fixed = program(state["prompt"], state["entry_point"], str(reply.content))
        fixed_report = run_tests(fixed, tests)
        if fixed_report.passed <= report.passed:
            break
        current, report, repaired = fixed, fixed_report, True
    return {"program": current, "repaired": repaired}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_node("coder", coder)
builder.add_node("tester", tester)
builder.add_node("execute", execute)
builder.add_node("select", select)
builder.add_edge(START, "coder")
builder.add_edge(START, "tester")
builder.add_edge(["coder", "tester"], "execute")
builder.add_edge("execute", "select")
builder.add_edge("select", END)
graph = builder.compile()
