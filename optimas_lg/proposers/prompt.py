"""Prompts, OPRO-style: an LLM reads the node's role, the prompts tried so far with their
LRF scores (worst to best) and a few real input/output pairs, and writes new prompts;
each is run through the node and scored by the LRF, next to the current prompt."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.graph.reads import read_values
from optimas_lg.llm.exploration import sampling
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.context import EvalConfig, ProposalContext

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

_OPEN = re.compile(r"<\s*prompt\s*>", re.I)
_CLOSE = re.compile(r"<\s*/\s*prompt\s*>", re.I)
_LABEL = re.compile(r"^\s*(new\s+)?(instruction|prompt)\s*:\s*", re.I)


@dataclass
class PromptConfig(EvalConfig):
    """``model`` writes the proposals (a local name or a hosted one, via ``chat_model``).

    Each of ``rounds`` asks for ``num_candidates`` prompts, so later rounds see the
    scores of earlier ones. Proposals longer than ``max_prompt_chars`` are dropped.
    """

    model: str = "local/smollm2-135m"
    rounds: int = 2
    num_candidates: int = 4
    temperature: float = 1.0
    max_tokens: int = 200
    num_examples: int = 3
    max_example_chars: int = 300
    max_history: int = 10
    max_prompt_chars: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1 or self.num_candidates < 1:
            raise ValueError(f"rounds and num_candidates must be >= 1, got {self.rounds}, {self.num_candidates}")


def parse_prompts(text: str) -> list[str]:
    """Prompts found in an LLM reply: the text between ``<prompt>`` tags.

    Small models drop closing tags, repeat opening ones or skip tags altogether, so an
    unclosed tag runs to the next tag or the end, and an untagged reply counts whole.
    """
    pieces = _OPEN.split(text)
    if len(pieces) == 1:
        pieces = ["", _CLOSE.split(text)[0]]
    found = []
    for piece in pieces[1:]:
        prompt = _LABEL.sub("", _CLOSE.split(piece)[0]).strip().strip("`\"'").strip()
        if prompt:
            found.append(prompt)
    return found


def _key(prompt: str) -> str:
    return " ".join(prompt.split()).casefold()


def _show(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def meta_prompt(ctx: ProposalContext, history: list[tuple[str, float]],
                examples: list[tuple[dict, dict, float]], config: PromptConfig) -> str:
    """The OPRO meta-prompt: the node's role, scored history (ascending), real examples."""
    lines = [f"You improve the instruction given to one step of an AI agent. The step is called {ctx.node!r}."]
    if ctx.doc:
        lines.append(f"What the step does: {ctx.doc.strip()}")
    if ctx.reads:
        lines.append(f"It reads: {', '.join(ctx.reads)}.")
    if ctx.writes:
        lines.append(f"It writes: {', '.join(ctx.writes)}.")
    if examples:
        lines.append("\nExamples of what the step received and returned with the current instruction:")
        for state, output, score in examples:
            shown = read_values(state, ctx.reads) or read_values(state)
            lines.append(f"Input: {_show(shown, config.max_example_chars)}")
            lines.append(f"Output: {_show(output, config.max_example_chars)}")
            lines.append(f"Score: {score:.3f}")
    lines.append("\nInstructions tried so far, from worst to best score (higher is better):")
    for prompt, score in history:
        lines.append(f"<prompt>{prompt}</prompt>\nScore: {score:.3f}")
    lines.append("\nWrite one new instruction that is different from all of the above and will score "
                 "higher. Write only the instruction, between <prompt> and </prompt>.")
    return "\n".join(lines)


class PromptProposer(Proposer):
    """OPRO over one ``Prompt`` knob; the current prompt competes, so "no change" can win.

    ``llm`` plugs in any LangChain chat model; by default ``chat_model(config.model)``.
    """

    kinds: ClassVar[tuple[KnobKind, ...]] = ("prompt",)
    config_class: ClassVar[type[EvalConfig]] = PromptConfig
    config: PromptConfig

    def __init__(self, config: PromptConfig | None = None, llm: BaseChatModel | None = None) -> None:
        super().__init__(config)
        self.llm = llm

    def _llm(self) -> BaseChatModel:
        """The proposer LLM; built per proposal so it follows a restarted model server."""
        if self.llm is not None:
            return self.llm
        from optimas_lg.llm import chat_model

        return chat_model(self.config.model, temperature=self.config.temperature, max_tokens=self.config.max_tokens)

    def _ask(self, llm: BaseChatModel, meta: str, seeds: list[int]) -> list[Any]:
        """One reply to ``meta`` per seed, each sampled with its own seed (``llm.sampling``;
        a chat model not built by ``chat_model`` samples as it is configured).

        Asked one at a time: a model server that batches requests computes a row's logits
        slightly differently with other rows beside it, and a sampled token can flip on
        that, so concurrent proposals made two runs of one job diverge. Alone, the same
        job proposes the same prompts on every run.
        """
        replies = []
        for seed in seeds:
            with sampling(self.config.temperature, seed):
                replies.append(llm.invoke([("user", meta)]))
        return replies

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        cfg = self.config
        current = evaluator.get(ctx.current[knob.name])
        examples = sorted(
            ((state, out, s) for state, out, s in zip(evaluator.inputs, current.outputs, current.scores)
             if out is not None and s is not None),
            key=lambda e: e[2],
        )[: cfg.num_examples]
        seen = {_key(c.value) for c in evaluator.candidates}
        llm = self._llm()
        rounds = []
        for round_ in range(cfg.rounds):
            history = sorted(evaluator.table(), key=lambda h: h[1])[-cfg.max_history:]
            meta = meta_prompt(ctx, history, examples, cfg)
            base = random.Random(f"{ctx.seed}:prompt:{ctx.node}:{knob.name}:{ctx.iteration}:{round_}").randrange(2**30)
            replies = self._ask(llm, meta, [base + i for i in range(cfg.num_candidates)])
            new, dropped = [], 0
            for reply in replies:
                usage = getattr(reply, "usage_metadata", None) or {}
                evaluator.cost.llm_tokens += int(usage.get("total_tokens", 0))
                for prompt in parse_prompts(str(reply.text)):
                    if len(prompt) > cfg.max_prompt_chars:
                        dropped += 1
                    elif _key(prompt) not in seen:
                        seen.add(_key(prompt))
                        new.append(prompt)
            for prompt in new:
                evaluator.evaluate(prompt)
            rounds.append({"proposed": len(new), "dropped_too_long": dropped})
        return Search(evaluator.best(), {"model": cfg.model, "rounds": rounds, "meta_prompt": meta})
