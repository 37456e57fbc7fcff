"""The PubMedQA graph: ``analyst`` (abstract -> short analysis) then ``solver`` (-> yes/no/maybe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.models import LOCAL_MODEL, model_options
from optimas_lg.graph.demos import demo_messages
from optimas_lg.graph.knobs import Choice, LoRA, Prompt, model_name
from optimas_lg.llm import chat_model

ANALYST_MAX_TOKENS = 64  # room for one or two full sentences; 48 cut most findings mid-sentence
SOLVER_MAX_TOKENS = 6  # one word is the answer; more only invites an echo of the findings

# Made-up turns that show the solver the reply format. Without them SmolLM2-135M echoed the
# findings or listed all three words ("Yes, yes, no, no, maybe") instead of deciding.
FORMAT_DEMOS = (
    ("Does regular exercise lower blood pressure in adults?",
     "Blood pressure fell by 8 mmHg in the exercise group compared with controls.", "yes"),
    ("Is vitamin C effective in preventing colds?",
     "Vitamin C did not change how often participants caught a cold.", "no"),
    ("Does early surgery improve survival in older patients?",
     "Survival was slightly higher after early surgery, but the difference was not significant and more "
     "studies are needed.", "maybe"),
)

MODELS = model_options()


class State(TypedDict, total=False):
    question: str
    context: list[str]  # the abstract's sections
    analysis: str
    answer: str


@dataclass
class AgentConfig:
    analyst_prompt: Annotated[str, Prompt(node="analyst")] = (
        "You read medical research abstracts. In one or two sentences, state the findings "
        "of the abstract that answer the question.")
    analyst_model: Annotated[str, Choice(MODELS, node="analyst")] = LOCAL_MODEL
    solver_prompt: Annotated[str, Prompt(node="solver")] = (
        "Answer the research question with one word: yes, no or maybe.")
    solver_model: Annotated[str, Choice(MODELS, node="solver")] = LOCAL_MODEL
    solver_adapter: Annotated[str | None, LoRA(base=LOCAL_MODEL, node="solver")] = None
    """Fine-tuned weights of the small solver: used when the solver runs ``LOCAL_MODEL``, the
    adapter's base (another ``solver_model`` has no weights it could adapt)."""

    def solver_model_name(self) -> str:
        """The model the solver requests: the adapted base model when an adapter is set for it."""
        return model_name(LOCAL_MODEL, self.solver_adapter) if self.solver_model == LOCAL_MODEL else self.solver_model


def _complete(model: str, messages: list[BaseMessage], max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke(messages).content).strip()


def _request(question: str, findings: str) -> str:
    return f"Question: {question}\nFindings: {findings}\nAnswer (yes, no or maybe):"


def solver_turns(question: str, findings: str) -> list[BaseMessage]:
    """The solver's request: the format demos as earlier turns, then the question and findings."""
    demos = [{"input": {"text": _request(*shown)}, "output": {"text": reply}} for *shown, reply in FORMAT_DEMOS]
    return [*demo_messages(demos), HumanMessage(_request(question, findings))]


def solver_messages(state: State, instruction: str) -> list[BaseMessage]:
    """The solver's chat request under system prompt ``instruction`` (what an adapter of it is trained on)."""
    return [SystemMessage(instruction), *solver_turns(state["question"], state["analysis"])]


def analyst(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    content = f"Question: {state['question']}\n\nAbstract:\n" + "\n".join(state["context"])
    messages = [SystemMessage(config.analyst_prompt), HumanMessage(content)]
    return {"analysis": _complete(config.analyst_model, messages, ANALYST_MAX_TOKENS)}


def solver(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    messages = solver_messages(state, config.solver_prompt)
    return {"answer": _complete(config.solver_model_name(), messages, SOLVER_MAX_TOKENS)}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([analyst, solver])
builder.add_edge(START, "analyst")
builder.add_edge("solver", END)
graph = builder.compile()
