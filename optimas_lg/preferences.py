"""Preference pairs from Monte-Carlo rollouts (the LRF's training data).

For node k and a recorded call of it: run node k on exactly the recorded input under
several knob assignments (the current one plus samples from node k's knob spaces),
continue the rest of the graph M times from each candidate output, and score each
candidate by the mean global metric. Every ordered pair of candidates with a real score
gap becomes a pair (``lrf.build_pairs``), stored with full provenance.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from optimas_lg.data import Example, Metric
from optimas_lg.knobs import KnobSpec
from optimas_lg.lrf import Candidate, PreferencePair, build_pairs
from optimas_lg.store import Store, models as m


@dataclass(frozen=True)
class PairConfig:
    """How many candidates and rollouts to spend per recorded node call."""

    samples: int = 4
    rollouts: int = 1
    min_margin: float = 0.0
    calls_per_node: int | None = 24
    concurrency: int = 8
    seed: int = 0


@dataclass
class PairStats:
    """What a collection cost and produced, per node."""

    pairs: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)
    failed_candidates: dict[str, int] = field(default_factory=dict)
    system_runs: int = 0

    def add(self, other: "PairStats") -> None:
        for mine, theirs in [(self.pairs, other.pairs), (self.candidates, other.candidates),
                             (self.failed_candidates, other.failed_candidates)]:
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        self.system_runs += other.system_runs


def sample_value(spec: KnobSpec, rng: random.Random, alternatives: Sequence[Any] = ()) -> Any:
    """A random value from a knob's space. Prompts and LoRA adapters have no space to
    sample from, so they draw from ``alternatives`` (values tried earlier) or stay put."""
    knob = spec.knob
    if spec.kind == "choice":
        return rng.choice(list(knob.options))
    if spec.kind in ("int", "float"):
        low, high = knob.low, knob.high
        x = math.exp(rng.uniform(math.log(low), math.log(high))) if knob.log else rng.uniform(low, high)
        if knob.step:
            x = low + round((x - low) / knob.step) * knob.step
        x = min(max(x, low), high)
        return int(round(x)) if spec.kind == "int" else float(x)
    pool = [spec.default, *alternatives]
    return rng.choice(pool)


def candidate_assignments(specs: Sequence[KnobSpec], current: dict[str, Any], n: int,
                          rng: random.Random, alternatives: dict[str, Sequence[Any]] | None = None
                          ) -> list[dict[str, Any]]:
    """``n`` distinct knob assignments for one node: the current one first, then samples
    (fewer when the node's space is smaller than ``n``)."""
    alternatives = alternatives or {}
    out = [dict(current)]
    seen = {repr(sorted(current.items()))}
    for _ in range(20 * n):
        if len(out) >= n:
            break
        values = dict(current)
        for spec in specs:
            values[spec.name] = sample_value(spec, rng, alternatives.get(spec.name, ()))
        key = repr(sorted(values.items()))
        if key not in seen:
            seen.add(key)
            out.append(values)
    return out


def collect_node_pairs(
    system: Any,
    node: str,
    calls: Sequence[m.NodeCall],
    examples: dict[str, Example],
    run_keys: dict[str, str],
    metric: Metric,
    current: dict[str, Any],
    config: PairConfig,
    run_node: Callable[..., dict],
    rollout_from: Callable[..., list],
    decode_state: Callable[[Any], dict],
    store: Store | None = None,
    job_id: int | None = None,
    alternatives: dict[str, Sequence[Any]] | None = None,
    stage: str = "",
) -> tuple[list[PreferencePair], PairStats]:
    """Pairs for one node from its recorded ``calls`` (``run_keys`` maps a call's run id
    to its example key). Candidates whose rollouts fail are counted, never scored.
    Stored pairs are tagged with ``stage`` so a repeated stage can replace its own."""
    specs = [s for s in system.knobs.values() if s.node == node]
    rng = random.Random(f"{config.seed}:{node}")
    chosen = list(calls)
    rng.shuffle(chosen)
    chosen = chosen[: config.calls_per_node] if config.calls_per_node else chosen
    stats = PairStats(candidates={node: 0}, failed_candidates={node: 0})

    def one_call(call: m.NodeCall) -> tuple[list[Candidate], int, int]:
        """(candidates, failed candidates, system runs) for one recorded call; its own
        seeded RNG keeps the samples the same whatever thread runs it."""
        call_rng = random.Random(f"{config.seed}:{node}:{call.id}")
        example = examples[run_keys[call.run_id]]
        state = decode_state(call.inputs)
        inputs = {k: state[k] for k in (call.reads or state) if k in state}
        node_current = {s.name: current[s.name] for s in specs}
        out, failed, runs = [], 0, 0
        for values in candidate_assignments(specs, node_current, config.samples, call_rng, alternatives):
            knobs = {**current, **values}
            try:
                output = run_node(system, node, state, knobs)
            except Exception:  # a candidate the node cannot run: counted, never scored
                failed += 1
                continue
            rollouts = rollout_from(system, node, state, output, example, metric, knobs,
                                    rollouts=config.rollouts, store=store, job_id=job_id)
            runs += len(rollouts)
            scores = [r.score for r in rollouts if r.error is None and r.score is not None]
            if len(scores) < len(rollouts) or not scores:
                failed += 1
                continue
            out.append(Candidate(node, example.key, inputs, output, values, scores))
        return out, failed, runs

    with ThreadPoolExecutor(max_workers=max(1, config.concurrency // max(1, config.rollouts))) as pool:
        results = list(pool.map(one_call, chosen))
    candidates = [c for group, _, _ in results for c in group]
    stats.failed_candidates[node] = sum(failed for _, failed, _ in results)
    stats.system_runs = sum(runs for _, _, runs in results)
    stats.candidates[node] = len(candidates)
    pairs = build_pairs(candidates, min_margin=config.min_margin)
    stats.pairs[node] = len(pairs)
    if store is not None:
        store.insert_many(m.PreferencePairRow, [pair_row(p, job_id, stage) for p in pairs])
    return pairs, stats


def pair_row(pair: PreferencePair, job_id: int | None, stage: str = "") -> dict[str, Any]:
    """A store row for a pair."""
    return {"job_id": job_id, "node": pair.node, "example_key": pair.example_id, "inputs": pair.inputs,
            "chosen": pair.chosen, "rejected": pair.rejected, "chosen_score": pair.chosen_score,
            "rejected_score": pair.rejected_score, "weight": pair.weight, "provenance": {"stage": stage}}


def delete_stage(store: Store, job_id: int, stage: str) -> int:
    """Drop the pairs a (possibly interrupted) stage stored, so that rerunning it after a
    resume does not count them twice."""
    ids = [r.id for r in store.select(m.PreferencePairRow, m.PreferencePairRow.job_id == job_id)
           if (r.provenance or {}).get("stage") == stage]
    if ids:
        with store.engine.begin() as conn:
            conn.execute(m.PreferencePairRow.__table__.delete().where(m.PreferencePairRow.id.in_(ids)))
    return len(ids)


def stored_pairs(store: Store, job_id: int, nodes: Sequence[str] | None = None) -> list[PreferencePair]:
    """All pairs of a job, back as ``PreferencePair`` objects."""
    where = [m.PreferencePairRow.job_id == job_id]
    if nodes is not None:
        where.append(m.PreferencePairRow.node.in_(list(nodes)))
    return [PreferencePair(node=r.node, example_id=r.example_key, inputs=r.inputs, chosen=r.chosen,
                           rejected=r.rejected, chosen_score=r.chosen_score, rejected_score=r.rejected_score,
                           weight=r.weight)
            for r in store.select(m.PreferencePairRow, *where)]
