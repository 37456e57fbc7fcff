"""How well an LRF ranks outputs, against an LLM judge as the zero-shot baseline.

Accuracy is only honest on examples the LRF never trained on, so the split is by example
(the paper's code split by pair and leaked inputs into its eval set).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optimas_lg.errors import LRFError
from optimas_lg.lrf import checkpoint
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.lrf.model import ScoreRequest
from optimas_lg.lrf.pairs import PreferencePair, canonical_json
from optimas_lg.store import Store, queries

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from optimas_lg.lrf.model import LocalRewardModel

OVERALL = "__overall__"  # key of the all-nodes figure in every accuracy dict


def accuracy_by_node(nodes: list[str], correct: list[bool]) -> dict[str, float]:
    """Fraction correct per node, plus ``OVERALL``; empty when there is nothing to count."""
    hits: dict[str, list[bool]] = {}
    for node, ok in zip(nodes, correct, strict=True):
        hits.setdefault(node, []).append(ok)
    result = {node: sum(oks) / len(oks) for node, oks in hits.items()}
    if correct:
        result[OVERALL] = sum(correct) / len(correct)
    return result


def split_by_example(
    pairs: list[PreferencePair], eval_fraction: float = 0.2, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, eval) pairs with no example on both sides, about ``eval_fraction`` of
    the examples held out (at least one on each side)."""
    if not 0 < eval_fraction < 1:
        raise LRFError(f"eval_fraction must be strictly between 0 and 1, got {eval_fraction}")
    ids = sorted({p.example_key for p in pairs})
    if len(ids) < 2:
        raise LRFError(f"a split by example needs pairs from at least 2 examples, got {len(ids)}")
    random.Random(seed).shuffle(ids)
    held_out = set(ids[:_held_out(len(ids), eval_fraction)])
    return [p for p in pairs if p.example_key not in held_out], [p for p in pairs if p.example_key in held_out]


def _held_out(examples: int, eval_fraction: float) -> int:
    return min(examples - 1, max(1, round(eval_fraction * examples)))


def examples_to_hold_out(held_out: int, eval_fraction: float) -> int:
    """The fewest examples with pairs of which ``split_by_example`` holds out ``held_out``."""
    examples = held_out + 1
    while _held_out(examples, eval_fraction) < held_out:
        examples += 1
    return examples


def ranking_accuracy(model: LocalRewardModel, pairs: list[PreferencePair]) -> dict[str, float]:
    """Per node (and ``OVERALL``), how often r(chosen) > r(rejected); ties count as wrong."""
    requests = [ScoreRequest(f"{i}/chosen", p.node, p.inputs, p.chosen) for i, p in enumerate(pairs)]
    requests += [ScoreRequest(f"{i}/rejected", p.node, p.inputs, p.rejected) for i, p in enumerate(pairs)]
    scores = model.score_many(requests)
    n = len(pairs)
    return accuracy_by_node([p.node for p in pairs], [scores[i] > scores[n + i] for i in range(n)])


@dataclass
class JudgeResult:
    """LLM-judge ranking accuracy per node (and ``OVERALL``). An answer that names neither
    output counts as wrong and is also counted in ``unparsed``."""

    accuracy: dict[str, float]
    unparsed: dict[str, int]
    replies: list[str]


JUDGE_SYSTEM = (
    "You review one step of a multi-step AI system. The system's final goal: {goal}\n"
    "The step is '{node}': {description}\n"
    "Given what the step read, decide which of two outputs of this step makes the final goal "
    "more likely to be reached. Reply with one letter: A or B."
)
JUDGE_USER = "The step read:\n{inputs}\n\nOutput A:\n{a}\n\nOutput B:\n{b}\n\nWhich output is better, A or B?"

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_EXPLICIT = re.compile(
    r"(?:answer|verdict|choice|choose|pick|prefer|better output is|better one is)\s*(?:is)?\s*[:\-]?"
    r"\s*[*\"'(\[]*\s*(?:output\s+|option\s+)?([AB])\b"
    r"|(?:output|option)\s+([AB])\s+is\s+(?:the\s+)?(?:better|preferred|best)",
    re.I,
)
_LONE = re.compile(r"(?<![A-Za-z])([AB])(?![A-Za-z])")


def parse_choice(reply: str) -> str | None:
    """'A', 'B', or None when the reply does not name exactly one of them."""
    text = _THINK.sub("", reply).strip()
    bare = text.strip(" \t\n*_`'\".:()[]").upper()
    if bare in ("A", "B"):
        return bare
    for candidates in ([a or b for a, b in _EXPLICIT.findall(text)], _LONE.findall(text)):
        letters = {c.upper() for c in candidates}
        if len(letters) == 1:
            return letters.pop()
        if letters:
            return None
    return None


def _render(values: dict) -> str:
    lines = (f"- {k}: {v if isinstance(v, str) else canonical_json(v)}" for k, v in values.items())
    return "\n".join(lines) or "(nothing)"


def judge_accuracy(
    pairs: list[PreferencePair],
    chat_model: BaseChatModel,
    node_descriptions: dict[str, str],
    goal: str,
    seed: int = 0,
    max_concurrency: int = 4,
) -> JudgeResult:
    """Ask ``chat_model`` which output of each pair is better for ``goal``, the chosen one
    shown as A or B at random so that a judge with a position bias scores about 0.5."""
    rng = random.Random(seed)
    chosen_is_a = [rng.random() < 0.5 for _ in pairs]
    prompts = []
    for pair, a_first in zip(pairs, chosen_is_a):
        a, b = (pair.chosen, pair.rejected) if a_first else (pair.rejected, pair.chosen)
        system = JUDGE_SYSTEM.format(goal=goal, node=pair.node, description=node_descriptions.get(pair.node, ""))
        user = JUDGE_USER.format(inputs=_render(pair.inputs), a=_render(a), b=_render(b))
        prompts.append([("system", system), ("user", user)])
    try:
        messages: list[Any] = chat_model.batch(prompts, config={"max_concurrency": max_concurrency})
    except Exception as exc:  # any provider error: the baseline cannot be measured
        raise LRFError(f"the judge model failed: {exc}") from exc
    replies = [str(message.text) for message in messages]
    choices = [parse_choice(r) for r in replies]
    unparsed: dict[str, int] = {}
    for pair, choice in zip(pairs, choices):
        unparsed[pair.node] = unparsed.get(pair.node, 0) + (choice is None)
    correct = [c == ("A" if a_first else "B") for c, a_first in zip(choices, chosen_is_a)]
    return JudgeResult(accuracy_by_node([p.node for p in pairs], correct), unparsed, replies)


def format_table(
    pairs: list[PreferencePair], lrf_accuracy: dict[str, float], judge: JudgeResult | None = None
) -> str:
    """A per-node text table of LRF vs judge ranking accuracy on ``pairs``."""
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.node] = counts.get(pair.node, 0) + 1
    header = ["node", "pairs", "LRF acc"] + (["judge acc", "judge unparsed"] if judge else [])
    rows = []
    for node in [*sorted(counts), OVERALL]:
        row = ["overall" if node == OVERALL else node, str(sum(counts.values()) if node == OVERALL else counts[node])]
        row.append(f"{lrf_accuracy[node]:.3f}" if node in lrf_accuracy else "-")
        if judge:
            row.append(f"{judge.accuracy[node]:.3f}" if node in judge.accuracy else "-")
            row.append(str(sum(judge.unparsed.values()) if node == OVERALL else judge.unparsed.get(node, 0)))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluate_checkpoint(store: Store, job_id: int, checkpoint_id: int | None = None,
                        judge: BaseChatModel | None = None, goal: str | None = None) -> tuple[dict[str, Any], str]:
    """LRF (and optional judge) ranking accuracy on the pairs of the examples the checkpoint
    held out when it was trained (``checkpoint_id`` defaults to the job's latest), as a
    JSON-ready dict and a text table."""
    job = store.job(job_id)
    rows = queries.lrf_checkpoints(store, job_id)
    if checkpoint_id is not None:
        rows = [r for r in rows if r.id == checkpoint_id]
    if not rows:
        which = "LRF checkpoint" if checkpoint_id is None else f"checkpoint {checkpoint_id}"
        raise LRFError(f"job {job_id} has no {which}; train one with `optimas-lg lrf train {job_id}`")
    row = rows[-1]
    held = set(row.metrics.get("eval_examples") or [])
    held_out = [p for p in stored_pairs(store, job_id) if p.example_key in held]
    if not held_out:
        raise LRFError(f"checkpoint {row.id} records no held-out pairs to evaluate on (it was adapted "
                           "online rather than trained on a split)")
    model = checkpoint.load(row.path)
    lrf_accuracy = ranking_accuracy(model, held_out)
    metric = (job.meta.get("spec") or {}).get("metric", "the job's metric")
    goal = goal or f"a high score from the metric {metric} on the system's final output"
    verdict = judge_accuracy(held_out, judge, model.nodes, goal) if judge is not None else None
    per_node = {n: sum(p.node == n for p in held_out) for n in sorted({p.node for p in held_out})}
    result = {"job_id": job_id, "checkpoint_id": row.id, "eval_pairs": len(held_out),
              "eval_pairs_per_node": per_node, "lrf": lrf_accuracy,
              "judge": verdict and {"accuracy": verdict.accuracy, "unparsed": verdict.unparsed, "goal": goal}}
    return result, format_table(held_out, lrf_accuracy, verdict)
