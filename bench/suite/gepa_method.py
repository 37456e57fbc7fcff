"""``gepa``: the gepa package's own ``LangChainAdapter`` on the system's compiled graph.

GEPA's text components are the system's Prompt knobs; ``rollout_fn`` invokes the graph
with a candidate's prompts in its context (every other knob at its default), ``eval_fn``
is the system's metric with the labels as feedback, and ``max_metric_calls`` is the
budget (GEPA counts every rollout, its first full validation included).
"""

from __future__ import annotations

import json
from typing import Any

from bench.suite.methods import NotApplicable, Outcome, Task
from bench.suite.systems import PROPOSER_MODEL

REFLECTION_TOKENS = 400


def _shown(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + " ..."


def gepa_search(task: Task) -> Outcome:
    prompts = task.knobs_of({"prompt"})
    if not prompts:  # before importing gepa: a system without prompts needs no bench extra to say so
        raise NotApplicable("no Prompt knobs for GEPA to write")
    import gepa
    from gepa.adapters.langchain_adapter import LangChainAdapter, make_reflection_lm

    from optimas_lg.llm import chat_model

    base = task.defaults()
    metric = task.suite_system.metric
    by_key = {e.key: e for e in [*task.train, *task.val]}

    def rollout(candidate: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
        return task.runner.invoke(by_key[data["key"]], {**base, **candidate})

    def evaluate(data: dict[str, Any], state: dict[str, Any]) -> tuple[float, str]:
        if state.get("error") is not None:
            return 0.0, f"The system failed: {state['error']}"
        example = by_key[data["key"]]
        score = float(metric(example, state))
        outputs = {k: v for k, v in state.items() if k not in example.inputs}
        return score, f"Score {score:.2f}. Expected: {_shown(example.labels)}. The system produced: {_shown(outputs)}"

    def record(data: dict[str, Any], state: dict[str, Any], score: float, feedback: str) -> dict[str, Any]:
        return {"Inputs": _shown(data["input"]), "Feedback": feedback}

    adapter = LangChainAdapter(rollout, evaluate, num_threads=8, reflective_record_fn=record, show_progress=False)
    reflection = make_reflection_lm(chat_model(PROPOSER_MODEL, temperature=1.0, max_tokens=REFLECTION_TOKENS))
    data = {split: [{"key": e.key, "input": e.inputs} for e in examples]
            for split, examples in (("train", task.train), ("val", task.val))}
    result = gepa.optimize(seed_candidate={k.name: base[k.name] for k in prompts}, trainset=data["train"],
                           valset=data["val"], adapter=adapter, reflection_lm=reflection,
                           max_metric_calls=task.budget, reflection_minibatch_size=3, seed=task.seed,
                           display_progress_bar=False, raise_on_exception=False)
    best = {**base, **result.best_candidate}
    return Outcome(best, task.runner.runs, result.val_aggregate_scores[result.best_idx],
                   {"candidates": len(result.candidates), "val_scores": result.val_aggregate_scores,
                    "total_metric_calls": result.total_metric_calls, "reflection_max_tokens": REFLECTION_TOKENS,
                    "reflection_temperature": 1.0, "components": [k.name for k in prompts]})
