"""Preference pairs from Monte-Carlo rollouts (the LRF's training data).

For node k and a recorded call of it: run node k on exactly the recorded input to get
several candidate outputs, continue the rest of the graph M times from each candidate
output, and score each candidate by the mean global metric. Every ordered pair of
candidates with a real score gap becomes a pair (``lrf.build_pairs``), stored with full
provenance. Candidates come from two sources:

* knob samples: the current knob assignment plus values sampled from node k's knob spaces;
* LLM samples: node k at the *current* knobs, run inside
  ``optimas_lg.llm.exploration.sampling(temperature, seed)`` so the chat models of
  ``optimas_lg.chat_model`` sample instead of decoding greedily. This gives LLM nodes whose
  knobs rarely change the output (a query rewriter, say) distinct candidates too. Only
  node k's run samples; the rollouts after it run with the models' own settings.

A collection may be given an allowance of system runs (``max_runs``); it is shared out in
call order, deterministically, and never exceeded (see ``RunAllowance``).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

from optimas_lg.data import Example, Metric
from optimas_lg.errors import ReplayError, SettingsError
from optimas_lg.execution.replay import RecordedStep
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobSpec, space_size
from optimas_lg.graph.reads import read_values
from optimas_lg.llm.exploration import sampling
from optimas_lg.lrf.pairs import (
    Candidate,
    PreferencePair,
    build_pairs,
    canonical_json,
    count_ties,
    gains_over_current,
)
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m

SAMPLE_KEY = "_sample"  # in a candidate's knobs: how an LLM-sampled candidate was drawn


@dataclass(frozen=True)
class PairConfig:
    """How many candidates and rollouts to spend per recorded node call.

    ``samples`` knob assignments (the current one first) plus up to ``llm_samples``
    LLM-sampled outputs at the current knobs, drawn at ``temperature`` with seeds derived
    from ``seed``, the node and the call. An LLM sample identical to an output already
    scored for the call is not rolled out (it would only pool more rollouts into that
    candidate): up to ``2 * llm_samples`` draws are made to find distinct ones, and none
    when the node makes no call to a ``chat_model`` model. ``llm_samples=0`` turns LLM
    sampling off. The last three fields say where a run may be saved or better spent
    (``docs/lrf.md``, the learning curve, has the measurements).
    """

    samples: int = 4
    rollouts: int = 1
    min_margin: float = 0.0
    calls_per_node: int | None = 24
    concurrency: int = 8
    seed: int = 0
    llm_samples: int = 2
    temperature: float = 0.8
    share_rollouts: bool = field(default=True, metadata={"help": (
        "Roll out each distinct output of a call once: a knob sample whose output equals an earlier "
        "candidate's is not rolled out (its rollouts would only be pooled into that candidate).")})
    room_first: bool = field(default=False, metadata={"help": (
        "Serve first the recorded calls whose run scored strictly between the lowest and the highest score "
        "of the node's recorded runs (in their seeded order; the others after, in theirs). At a call whose "
        "run already got the best score a candidate can only tie or lose, at the lowest only tie or win, "
        "so most of its comparisons tie: on STaRK 141 of 144 at the best. It gave more pairs and a worse "
        "curve there, off by default (docs/lrf.md, the learning curve). "
        "Needs the runs' scores (``collect_node_pairs(run_scores=...)``).")})
    exact_last: bool = field(default=False, metadata={"help": (
        "Score a candidate of a node after which the graph ends (its only edge goes to END, alone in its "
        "step) by the metric on its output directly: nothing runs after it, so it needs one rollout, which "
        "is not recorded or counted as a system run.")})

    def __post_init__(self) -> None:
        if self.samples < 1 or self.rollouts < 1 or self.llm_samples < 0:
            raise SettingsError(f"pair settings need samples >= 1, rollouts >= 1 and llm_samples >= 0; got "
                               f"samples={self.samples}, rollouts={self.rollouts}, llm_samples={self.llm_samples}")
        if self.llm_samples and not self.temperature > 0:
            raise SettingsError(f"llm_samples={self.llm_samples} needs a sampling temperature > 0, "
                               f"got {self.temperature}")


@dataclass
class PairStats:
    """What a collection cost and produced, per node.

    ``candidates`` counts every scored candidate, ``llm_candidates`` those of them that
    were LLM samples, ``exact_candidates`` those scored without a counted run
    (``exact_last``); ``skipped_calls`` the chosen calls left out because the run
    allowance was spent; ``duplicates`` the knob samples whose output an earlier
    candidate of the call already had; ``ties`` the comparisons of two distinct outputs
    of one input that made no pair for want of a score gap; ``gain`` sums, over the
    ``gain_inputs`` inputs whose current output was scored, how much the best candidate
    outscored it (``lrf.gains_over_current``; ``headroom()`` is the mean).
    """

    pairs: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)
    failed_candidates: dict[str, int] = field(default_factory=dict)
    llm_candidates: dict[str, int] = field(default_factory=dict)
    skipped_calls: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    ties: dict[str, int] = field(default_factory=dict)
    exact_candidates: dict[str, int] = field(default_factory=dict)
    gain: dict[str, float] = field(default_factory=dict)
    gain_inputs: dict[str, int] = field(default_factory=dict)
    system_runs: int = 0

    def add(self, other: "PairStats") -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
        self.system_runs += other.system_runs

    def headroom(self) -> dict[str, float]:
        """Per node with a scored current output: the mean gain of its best candidate over it."""
        return {node: self.gain[node] / n for node, n in self.gain_inputs.items() if n}


class RunAllowance:
    """The system runs a collection may still start (``limit=None``: no limit).

    Calls are granted runs strictly in their order (call ``i`` waits until calls before it
    were served), each getting as many of its candidates' rollouts as still fit, so what
    is scored does not depend on thread timing, and ``used`` never exceeds ``limit``.
    Calls must be submitted to a FIFO pool in index order (earlier calls are then always
    running or done), and each must ``release`` its turn (again is harmless) whether it
    asked or not.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            limit = 0
        self.limit = limit
        self.used = 0
        self._turn = 0  # every call before this one has released its turn
        self._released: set[int] = set()
        self._cond = threading.Condition()

    @property
    def exhausted(self) -> bool:
        """True once no further run may start."""
        return self.limit is not None and self.used >= self.limit

    def grant(self, index: int, wanted: int, cost: int) -> tuple[int, bool]:
        """How many of its ``wanted`` candidates (``cost`` runs each) call ``index`` may score,
        and whether the call is skipped (at its turn not even one candidate fit)."""
        with self._cond:
            if self.limit is None or cost == 0:
                self.used += wanted * cost
                return wanted, False
            self._cond.wait_for(lambda: self._turn >= index)
            granted = max(0, min(wanted, (self.limit - self.used) // cost))
            skipped = self.used + cost > self.limit
            self.used += granted * cost
            return granted, skipped

    def release(self, index: int) -> None:
        """Call ``index`` is done asking; let the next call ask."""
        with self._cond:
            self._released.add(index)
            while self._turn in self._released:
                self._released.discard(self._turn)
                self._turn += 1
            self._cond.notify_all()


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


def planned_runs_per_call(specs: Sequence[KnobSpec], config: PairConfig, calls_llm: bool, exact: bool) -> int:
    """The system runs the candidates of one recorded call are planned to cost: up to
    ``samples`` knob assignments (fewer when the node's knob space is smaller; a prompt,
    LoRA or demos knob has only its own value to sample) plus ``llm_samples`` draws when the
    node calls an LLM, ``rollouts`` runs each; none when it is scored exactly
    (``exact_last``). Outputs that repeat cost less under ``share_rollouts``."""
    if exact:
        return 0
    assignments = space_size(specs)
    samples = config.samples if assignments is None else min(config.samples, assignments)
    return (samples + (config.llm_samples if calls_llm else 0)) * config.rollouts


def room_first(calls: Sequence[m.NodeCall], run_scores: Mapping[str, float | None]) -> list[m.NodeCall]:
    """``calls`` with those whose run scored strictly between the lowest and the highest
    score of their runs first, each group in its given order (see ``PairConfig.room_first``)."""
    known = [score for call in calls if (score := run_scores.get(call.run_id)) is not None]
    if not known:
        return list(calls)
    low, high = min(known), max(known)

    def at_an_end(call: m.NodeCall) -> bool:
        score = run_scores.get(call.run_id)
        return score is None or not low < score < high

    return sorted(calls, key=at_an_end)  # stable: the seeded order holds within each group


def sample_seed(seed: int, node: str, call_key: str, index: int) -> int:
    """The base seed of LLM sample ``index`` for one recorded call (``call_key`` names the
    call by example and step; stable across runs and processes, unlike ``hash``); the
    sample's i-th LLM call uses this plus i."""
    digest = hashlib.sha256(f"{seed}:{node}:{call_key}:llm:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # 31 bits: fits every server's seed field


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
    recorded_step: Callable[[m.NodeCall], RecordedStep],
    store: Store | None = None,
    job_id: int | None = None,
    alternatives: dict[str, Sequence[Any]] | None = None,
    stage: str = "",
    max_runs: int | None = None,
    ends_run: bool = False,
    run_scores: Mapping[str, float | None] | None = None,
) -> tuple[list[PreferencePair], PairStats]:
    """Pairs for one node from its recorded ``calls`` (``run_keys`` maps a call's run id
    to its example key). Candidates whose rollouts fail are counted, never scored.
    Stored pairs are tagged with ``stage`` so a repeated stage can replace its own.
    ``recorded_step`` places a call in its step: a candidate continues the graph together
    with the recorded outputs of the step's other tasks (a fan-out node's siblings).

    ``max_runs`` caps the system runs (rollouts) this collection starts: calls are served
    in their (seeded) order, each with as many whole candidates as still fit, and the
    rest are skipped (``stats.skipped_calls``). The cap is never exceeded.

    ``ends_run`` says that nothing runs after ``node`` (see ``PairConfig.exact_last``);
    ``run_scores`` maps the recorded calls' run ids to their scores, which
    ``PairConfig.room_first`` orders the calls by.
    """
    specs = [s for s in system.knobs.values() if s.node == node]
    rng = random.Random(f"{config.seed}:{node}")
    # Call ids are random UUIDs and recording order follows thread timing: order and seed
    # the calls by what they are (example, step), so a rerun draws the same candidates.
    keys = {call.id: f"{run_keys[call.run_id]}:{call.namespace}:{call.step}" for call in calls}
    chosen = sorted(calls, key=lambda call: (keys[call.id], call.id))
    rng.shuffle(chosen)
    if config.room_first:
        if run_scores is None:
            raise SettingsError("pairs.room_first needs the recorded runs' scores: pass run_scores")
        chosen = room_first(chosen, run_scores)
    chosen = chosen[: config.calls_per_node] if config.calls_per_node else chosen
    stats = PairStats(**{f.name: {node: 0} for f in fields(PairStats) if f.name != "system_runs"})
    allowance = RunAllowance(max_runs)
    node_current = {s.name: current[s.name] for s in specs}

    def outputs(call: m.NodeCall, step: RecordedStep) -> tuple[list[tuple[dict, dict]], int, int]:
        """(knobs, output) of every candidate of one call, knob samples first, how many node
        runs failed and how many knob samples repeated an earlier output. Its own seeded RNG
        keeps them the same whatever thread runs it."""
        call_rng = random.Random(f"{config.seed}:{node}:{keys[call.id]}")
        found: list[tuple[dict, dict]] = []
        failed = duplicates = 0
        seen: set[str] = set()
        for values in candidate_assignments(specs, node_current, config.samples, call_rng, alternatives):
            try:
                output = run_node(system, node, step.node_input, {**current, **values},
                                  as_send=step.as_send, graph_state=step.state)
            except Exception:  # a candidate the node cannot run: counted, never scored
                failed += 1
                continue
            key = canonical_json(output)
            duplicates += key in seen
            if key in seen and config.share_rollouts:
                continue
            seen.add(key)
            found.append((values, output))
        new = 0
        for index in range(2 * config.llm_samples):
            if new >= config.llm_samples:
                break
            seed = sample_seed(config.seed, node, keys[call.id], index)
            try:
                with sampling(config.temperature, seed) as drawn:
                    output = run_node(system, node, step.node_input, {**current, **node_current},
                                      as_send=step.as_send, graph_state=step.state)
            except Exception:
                failed += 1
                new += 1  # a failing draw uses up its slot, so a broken node is not retried forever
                continue
            if drawn.calls == 0:
                break  # the node made no sampling-aware LLM call: every draw would be the same
            key = canonical_json(output)
            if key not in seen:
                seen.add(key)
                new += 1
                found.append(({**node_current, SAMPLE_KEY: {"temperature": config.temperature, "seed": seed}},
                              output))
        return found, failed, duplicates

    def one_call(index: int) -> tuple[list[Candidate], int, int, bool, int, bool]:
        """(candidates, failed candidates, system runs, skipped, duplicates, scored exactly)
        for the index-th chosen call."""
        try:
            if allowance.exhausted and not (config.exact_last and ends_run):
                return [], 0, 0, True, 0, False
            call = chosen[index]
            example = examples[run_keys[call.run_id]]
            try:
                step = recorded_step(call)
            except ReplayError:  # another task of its step failed: the step cannot be continued
                return [], 1, 0, False, 0, False
            inputs = read_values(step.node_input, call.reads)
            found, failed, duplicates = outputs(call, step)
            exact = config.exact_last and ends_run and not step.siblings
            granted, skipped = allowance.grant(index, len(found), 0 if exact else config.rollouts)
            allowance.release(index)
            if skipped:  # no run left for it: reported as skipped, its node runs not counted
                return [], 0, 0, True, 0, False
            out, runs = [], 0
            for values, output in found[:granted]:
                knobs = {**current, **{k: v for k, v in values.items() if k != SAMPLE_KEY}}
                rollouts = rollout_from(system, node, step.state, output, example, metric, knobs,
                                        rollouts=1 if exact else config.rollouts, store=None if exact else store,
                                        job_id=job_id, siblings=step.siblings, position=step.position,
                                        replay_of=call.run_id)
                runs += 0 if exact else len(rollouts)
                scores = [r.score for r in rollouts if r.error is None and r.score is not None]
                if len(scores) < len(rollouts) or not scores:
                    failed += 1
                    continue
                out.append(Candidate(node, example.key, inputs, output, values, scores))
            return out, failed, runs, False, duplicates, exact
        finally:
            allowance.release(index)

    with ThreadPoolExecutor(max_workers=max(1, config.concurrency // max(1, config.rollouts))) as pool:
        results = list(pool.map(one_call, range(len(chosen))))
    candidates = [c for group, *_ in results for c in group]
    stats.failed_candidates[node] = sum(r[1] for r in results)
    stats.system_runs = sum(r[2] for r in results)
    stats.skipped_calls[node] = sum(r[3] for r in results)
    stats.duplicates[node] = sum(r[4] for r in results)
    stats.candidates[node] = len(candidates)
    stats.llm_candidates[node] = sum(SAMPLE_KEY in c.knobs for c in candidates)
    stats.exact_candidates[node] = sum(len(r[0]) for r in results if r[5])
    pairs = build_pairs(candidates, min_margin=config.min_margin)
    stats.pairs[node] = len(pairs)
    stats.ties[node] = count_ties(candidates, config.min_margin)
    gains = gains_over_current(candidates, node_current)
    stats.gain[node], stats.gain_inputs[node] = sum(gains), len(gains)
    if store is not None:
        store.insert_many(m.PreferencePairRow, [pair_row(p, job_id, stage) for p in pairs])
    return pairs, stats


def pair_row(pair: PreferencePair, job_id: int | None, stage: str = "") -> dict[str, Any]:
    """A store row for a pair; state values go through ``serde`` (messages, pydantic models...)."""
    return {"job_id": job_id, "node": pair.node, "example_key": pair.example_key,
            "inputs": serde.to_json(pair.inputs), "chosen": serde.to_json(pair.chosen),
            "rejected": serde.to_json(pair.rejected), "chosen_score": pair.chosen_score,
            "rejected_score": pair.rejected_score, "weight": pair.weight, "provenance": {"stage": stage}}


def delete_stage(store: Store, job_id: int, stage: str) -> int:
    """Drop the pairs a (possibly interrupted) stage stored, so that rerunning it after a
    resume does not count them twice."""
    return queries.delete_pairs_of_stage(store, job_id, stage)


def stored_pairs(store: Store, job_id: int, nodes: Sequence[str] | None = None,
                 types: serde.Types = serde.NO_TYPES) -> list[PreferencePair]:
    """All pairs of a job, back as ``PreferencePair`` objects, their state values decoded
    (LangChain messages always; the graph's own classes with ``types=system.types``)."""
    def decode(value: Any) -> Any:
        return serde.from_json(value, types)

    return [PreferencePair(node=r.node, example_key=r.example_key, inputs=decode(r.inputs),
                           chosen=decode(r.chosen), rejected=decode(r.rejected),
                           chosen_score=r.chosen_score, rejected_score=r.rejected_score, weight=r.weight)
            for r in queries.job_pairs(store, job_id, nodes)]
