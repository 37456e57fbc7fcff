"""The in-process side of one job: the loaded system, data and metric, the store, the
proposers and the local reward model. The loop's checkpointed state holds only ids,
scores and records; everything heavy lives here, reaches the loop's nodes through
LangGraph's run context (``LoopContext``), and is rebuilt from the job's stored spec
on resume. With a ``server``, every system run, node replay and rollout of the job
executes on that LangGraph Server; nothing else changes."""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optimas_lg.data import Example, Metric, as_examples, check_metric, load_examples, split
from optimas_lg.errors import DataError, OptimasError, ReplayError, SerdeError, SettingsError
from optimas_lg.execution.meter import TokenMeter
from optimas_lg.execution.replay import RecordedStep, knobs_read, recorded_step, rollout_from, run_node
from optimas_lg.execution.runner import RunSummary, run_examples
from optimas_lg.execution.server import Server
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.graph.system import System
from optimas_lg.graph.target import load_target
from optimas_lg.loop.budget import PROPOSER_TOKENS, REPLAY_TOKENS, SYSTEM_TOKENS, Spent
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.pair_plan import PairCost
from optimas_lg.loop.records import Evaluation
from optimas_lg.loop.rewards import LocalRewards, ScoreFn, random_scorer, tied_scores
from optimas_lg.lrf import PreferencePair
from optimas_lg.lrf.collect import PairConfig, PairStats, collect_node_pairs, delete_stage, planned_runs_per_call
from optimas_lg.pricing import PriceTable, Spend, Usage
from optimas_lg.proposers import Proposer, RunCost, build_proposers
from optimas_lg.proposers.registry import ProposerArg
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m

PROBE_INPUTS = 8
"""Recorded inputs a node is run on to see which knobs it reads."""


@dataclass
class Workspace:
    """Everything one job works with. Build it with ``create`` or ``from_spec`` (which check
    that the pieces fit), then ``bind`` it to its job, so a job exists only once all it
    needs has loaded."""

    system: System
    metric: Metric
    trainset: list[Example]
    valset: list[Example]
    testset: list[Example]
    store: Store
    config: OptimizeConfig
    job_id: int | None
    proposers: dict[str, Proposer]
    rewards: LocalRewards
    prices: PriceTable
    _examples: dict[str, Example] = field(default_factory=dict)
    meter: TokenMeter = field(default_factory=TokenMeter)  # tokens no recorded run holds
    _counted: Spent = field(default_factory=Spent)  # what the job's finished loop steps spent
    _step_start: tuple[int, int, float] = (0, 0, 0.0)  # the store's (runs, tokens, USD) when this step began
    _meter_start: dict[str, int] = field(default_factory=dict)  # the meter when this step began
    server: Server | None = None  # where the user's graph runs (None: in this process)
    _sent: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # sent_from, per node

    @classmethod
    def from_spec(cls, spec: JobSpec, config: OptimizeConfig, store: Store, job_id: int | None = None,
                  proposers: Mapping[str, ProposerArg] | None = None, server: Server | None = None) -> Workspace:
        """Load target, metric and data named by a spec (the CLI, Studio and resume)."""
        spec.check_data()
        if spec.workdir and spec.workdir not in sys.path:
            sys.path.insert(0, spec.workdir)  # as load_target does for the directory a job starts in
        system = System.load(spec.located(spec.target), context=spec.context)
        system.check_inputs([], spec.inputs)
        metric = load_target(spec.located(spec.metric))
        check_metric(metric, spec.metric)
        files = spec.data_files()
        train, val, test = (load_examples(files[part], spec.inputs, spec.labels, spec.key_field,
                                          key_prefix="" if part == "train" else f"{part}:")
                            if getattr(spec, part) else None for part in ("train", "val", "test"))
        return cls.create(system, metric, train, val, test, store, config, job_id, proposers, server)

    @classmethod
    def create(cls, system: System, metric: Metric, trainset: Sequence[Example], valset: Sequence[Example] | None,
               testset: Sequence[Example] | None, store: Store, config: OptimizeConfig, job_id: int | None = None,
               proposers: Mapping[str, ProposerArg] | None = None, server: Server | None = None) -> Workspace:
        """Check the pieces fit; without a validation set, a seeded ``val_fraction`` of the
        training data becomes one."""
        check_metric(metric)
        trainset = as_examples(trainset, "trainset")
        if not trainset:
            raise DataError("the training set is empty: give at least one example to optimize on")
        if valset is None:
            val_part, train_part = split(trainset, [config.val_fraction, 1 - config.val_fraction], config.seed)
            trainset, valset = train_part, val_part
        valset = as_examples(valset, "valset")
        testset = as_examples(testset or [], "testset")
        examples = [*trainset, *valset, *testset]
        system.check_inputs(examples)
        seen: dict[str, str] = {}
        for split_name, part in (("train", trainset), ("val", valset), ("test", testset)):
            for e in part:
                if e.key in seen:
                    raise DataError(f"train, validation and test examples must have distinct keys: {e.key!r} is in "
                                    f"{seen[e.key]} and {split_name} (set the key field with --key)")
                seen[e.key] = split_name
        system.knob_values(config.initial_knobs)  # a warm start names declared knobs and values in their space
        tunable = [n for n in system.optimizable_nodes() if _tunable_knobs(system, config, n)]
        if not tunable:
            raise OptimasError(f"{system.name} has no knobs of the kinds {config.kinds}; declare knobs in its "
                               "context schema (optimas_lg.Prompt, Choice, IntRange, FloatRange, LoRA)")
        rewards = LocalRewards(store, job_id, {n: system.graph.nodes[n].doc or n for n in tunable}, config.lrf,
                               config.lrf_eval_fraction, config.seed)
        return cls(system, metric, trainset, valset, testset, store, config, job_id,
                   build_proposers(config.proposers, proposers), rewards, PriceTable(config.prices),
                   {e.key: e for e in examples}, server=server)

    def check_gate_can_decide(self) -> None:
        """Refuse a job whose gate could never accept a change: a validation set smaller than
        ``gate.min_examples``, or a ``budget.max_system_runs`` below the baseline, the
        training runs every round reads and one validation. Such a job would spend its whole
        budget for nothing. The entry points call this before they create a job, so a bad
        input creates none."""
        n, needed = len(self.valset), self.config.gate.min_examples
        if n < needed:
            raise DataError(f"{n} validation examples, but the gate accepts no change on fewer than {needed}; "
                            "pass a larger valset or lower the `gate.min_examples` setting")
        limit, validation = self.config.budget.max_system_runs, self.validation_runs()
        least = 2 * validation + len(self.trainset)
        if limit is not None and limit < least:
            raise SettingsError(f"max_system_runs {limit} cannot pay for one decision: the baseline and one "
                                f"validation take {validation} runs each, and every round reads the "
                                f"{len(self.trainset)} training runs; allow at least {least} (a few times that "
                                "to search), or pass fewer examples")

    def validation_runs(self) -> int:
        """The system runs one full validation of a config costs."""
        return len(self.valset) * max(1, self.config.val_repeats)

    def bind(self, job_id: int) -> None:
        """Attach the workspace to its job in the store."""
        self.job_id = self.rewards.job_id = job_id

    def initial_knobs(self) -> dict[str, Any]:
        """The assignment the loop starts from: the defaults, warm-started by ``config.initial_knobs``."""
        return self.system.knob_values(self.config.initial_knobs)

    # -- what may be tuned --------------------------------------------------------
    def tunable_knobs(self, node: str) -> list[KnobSpec]:
        """The node's knobs of the allowed kinds, in the order of ``config.kinds``."""
        return _tunable_knobs(self.system, self.config, node)

    def tunable_nodes(self) -> list[str]:
        return [n for n in self.system.optimizable_nodes() if self.tunable_knobs(n)]

    def validation_order(self) -> list[int]:
        """The order in which the gate runs the validation examples: seeded and the same for
        every try of the job, so the part its interim look reads is a random one even when
        the validation set is sorted (by topic, by difficulty)."""
        order = list(range(len(self.valset)))
        random.Random(f"{self.config.seed}:validation-order").shuffle(order)
        return order

    # -- running the user's system ------------------------------------------------
    def run(self, examples: Sequence[Example], knobs: dict[str, Any], config_id: int, purpose: str) -> RunSummary:
        return run_examples(self.system, list(examples), self.metric, knobs, self.store, job_id=self.job_id,
                            config_id=config_id, concurrency=self.config.concurrency, purpose=purpose,
                            progress=False, server=self.server)

    def evaluate(self, split_name: str, label: str, knobs: dict[str, Any], config_id: int) -> Evaluation:
        """Score a config on a split (``val`` or ``test``), ``val_repeats`` times, averaging per example."""
        examples = {"val": self.valset, "test": self.testset}[split_name]
        return self.evaluate_examples(examples, split_name, label, knobs, config_id)

    def evaluate_examples(self, examples: Sequence[Example], split_name: str, label: str, knobs: dict[str, Any],
                          config_id: int) -> Evaluation:
        """``evaluate`` on any examples (a training mini-batch, say), labelled ``split_name``.
        Test runs are recorded as such, and no budget counts them (``queries.UNBUDGETED``)."""
        repeats = max(1, self.config.val_repeats)
        objective = self.config.objective
        per_example: list[list[float]] = [[] for _ in examples]
        errors: list[str] = []
        usage: dict[str, tuple[float, float]] = {}  # run id -> (USD, s), when the objective needs them
        for _ in range(repeats):
            summary = self.run(examples, knobs, config_id, purpose="test" if split_name == "test" else "eval")
            if objective.weighted or objective.constrained:
                usage.update(self._run_usage([r.run_id for r in summary.results]))
            for i, result in enumerate(summary.results):
                if result.error is None and result.score is not None:
                    per_example[i].append(objective.value(result.score, *usage[result.run_id])
                                          if objective.weighted else result.score)
                else:
                    errors.append(result.error or "no score")
        scores = [sum(s) / len(s) if s else None for s in per_example]
        cost = seconds = None
        if objective.constrained and usage:
            cost = sum(c for c, _ in usage.values()) / len(usage)
            seconds = sum(t for _, t in usage.values()) / len(usage)
        return Evaluation(split_name, label, config_id, scores, len(errors), repeats, errors[0] if errors else None,
                          cost, seconds)

    def _run_usage(self, run_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Per run: (cost in USD under the job's prices, wall time in s). A model with no
        price is an error when the objective needs runs priced."""
        usage = queries.run_usage(self.store, list(run_ids))
        unpriced = self.prices.spend(Usage(None, *u) for _, calls in usage.values() for u in calls).unpriced
        if unpriced and self.config.objective.prices_runs:
            raise OptimasError(f"job {self.job_id}: the objective weighs or limits cost, but {', '.join(unpriced)} "
                               "has no price; add it to the `prices` setting")
        return {rid: (self.prices.spend(Usage(None, *u) for u in calls).total, latency or 0.0)
                for rid, (latency, calls) in usage.items()}

    def begin_step(self, before: Spent) -> None:
        """Count spend from here on top of what the job's finished steps spent (``before``:
        the checkpointed totals). Runs, tokens and money that an attempt killed before its
        checkpoint spent are then never counted, however often a step is redone."""
        self._counted = before
        self._step_start = self._stored_spend()
        self._meter_start = self.meter.totals()

    def _stored_spend(self) -> tuple[int, int, float]:
        runs, tokens = queries.job_spend(self.store, self.job_id)
        return runs, tokens, self.money().total

    def money(self) -> Spend:
        """What the job's recorded LLM calls cost under its price table (per node and model)."""
        return self.prices.spend(Usage(*row) for row in queries.token_usage(self.store, self.job_id, budgeted=True))

    def spent(self) -> Spent:
        """What this job spent: its finished steps' and the current step's so far (tokens by
        source: the recorded runs' from the store, the rest from the meter)."""
        runs, tokens, cost = self._stored_spend()
        done = self._counted
        by_source = dict(done.tokens_by_source or ({SYSTEM_TOKENS: done.llm_tokens} if done.llm_tokens else {}))
        now = {SYSTEM_TOKENS: tokens - self._step_start[1]}
        for source, total in self.meter.totals().items():
            now[source] = total - self._meter_start.get(source, 0)
        for source, n in now.items():
            if n:
                by_source[source] = by_source.get(source, 0) + n
        return dataclasses.replace(done, system_runs=done.system_runs + runs - self._step_start[0],
                                   llm_tokens=sum(by_source.values()), tokens_by_source=by_source,
                                   cost=done.cost + cost - self._step_start[2])

    def remaining_runs(self) -> int | None:
        """System runs left under ``budget.max_system_runs`` and, at the job's mean cost per
        run so far, under ``budget.max_cost`` (``None``: no such limit)."""
        budget, spent = self.config.budget, self.spent()
        limits = [] if budget.max_system_runs is None else [budget.max_system_runs - spent.system_runs]
        if budget.max_cost is not None and spent.cost > 0:
            limits.append(int((budget.max_cost - spent.cost) / (spent.cost / max(spent.system_runs, 1))))
        return max(0, min(limits)) if limits else None

    def run_node(self, node: str, state: Any, knobs: dict[str, Any]) -> Any:
        """``replay.run_node`` with the node's LLM tokens counted against the job; ``state``
        is a recorded input (a ``Send`` argument for a node that ran as a Send task)."""
        sent_from = self.sent_from(node)
        return run_node(self.system, node, state, knobs, as_send=sent_from is not None,
                        graph_state=None if sent_from is None else sent_from.get(_canonical(state)),
                        callbacks=self._replay_callbacks(), server=self.server)

    def sent_from(self, node: str) -> dict[str, Any] | None:
        """For a node whose recorded calls were ``Send`` tasks, the graph state each recorded
        Send argument (by its JSON) was sent from; ``None`` for any other node. A replay must
        hand such a node its argument as a Send with that state: seeded as a state, the
        argument's fields that are not state channels were dropped and the node ran on nothing."""
        if node not in self._sent:
            calls, _ = self.node_calls(node)
            steps = (self._step_or_none(c) for c in calls)
            first = next((step for step in steps if step is not None), None)
            self._sent[node] = None if first is None or not first.as_send else {  # a plain node: no more lookups
                _canonical(step.node_input): step.state for step in (first, *steps) if step is not None}
        return self._sent[node]

    def _step_or_none(self, call: m.NodeCall) -> RecordedStep | None:
        try:
            return self.recorded_step(call)
        except ReplayError:  # a step with a failed sibling cannot be replayed; the others still can
            return None

    def _replay_callbacks(self) -> list[Any]:
        return [self.meter.handler(REPLAY_TOKENS)]

    def charge_proposer(self, tokens: int) -> None:
        """Count a proposer's own LLM tokens against the job."""
        self.meter.add(PROPOSER_TOKENS, tokens)

    def sample_train(self, n: int, salt: str) -> list[Example]:
        rng = random.Random(f"{self.config.seed}:{salt}")
        return rng.sample(self.trainset, min(n, len(self.trainset)))

    def config_version(self, knobs: dict[str, Any], note: str, parent_id: int | None = None) -> int:
        """The id of this job's config version of ``knobs`` (added if new): a step redone after
        a kill gets the row its first attempt added, so config ids match an uninterrupted run."""
        note = f"job {self.job_id}: {note}"
        found = queries.find_config(self.store, knobs, self.system.name, parent_id, note)
        return found if found is not None else self.store.add_config(knobs, self.system.name, parent_id, note)

    def scorer(self, node: str, reads: Sequence[str], iteration: int) -> ScoreFn:
        """How proposers rank ``node``'s candidates this round: its LRF, seeded random
        scores under ``ranking="random"``, all ties under ``ranking="global"``."""
        if self.config.uses_lrf:
            return self.rewards.scorer(node, reads)
        if self.config.ranking == "global":
            return tied_scores
        return random_scorer(f"{self.config.seed}:random:{node}:{iteration}")

    # -- recorded node calls and pairs --------------------------------------------
    def node_calls(self, node: str, example_keys: Sequence[str] | None = None) -> tuple[list[m.NodeCall],
                                                                                           dict[str, str]]:
        """Every recorded call of ``node`` on training examples (from collect runs; several a
        run where the node sits in a loop), and a map from run id to example key."""
        return queries.node_calls(self.store, self.job_id, node, example_keys)

    def reached_nodes(self, config_id: int | None = None) -> list[str]:
        """Tunable nodes with recorded calls to work on; with ``config_id``, only those that
        also ran under that config (a node an accepted change routes around is not spent on)."""
        ran = None if config_id is None else queries.nodes_called(self.store, self.job_id, config_id)
        return [n for n in self.tunable_nodes() if (ran is None or n in ran) and self.node_calls(n)[0]]

    def unrecorded_nodes(self, config_id: int) -> list[str]:
        """Tunable nodes that ran under ``config_id`` (validation runs included) but in no
        training run: a change routed the graph to them, and a round needs their inputs."""
        ran = queries.nodes_called(self.store, self.job_id, config_id)
        return [n for n in self.tunable_nodes() if n in ran and not self.node_calls(n)[0]]

    def check_replayable(self) -> None:
        """Refuse, before pairs and rounds spend the budget, recorded inputs that no node can
        be run alone on (a value stored only as its repr): every round decodes its node's."""
        for node in self.tunable_nodes():  # an unreached node has no call to check
            for call in self.node_calls(node)[0]:
                try:
                    self.decode(call.inputs)
                except SerdeError as exc:
                    raise SerdeError(f"job {self.job_id}: node {node!r} cannot be optimized: {exc}") from exc

    def knobs_read(self, node: str, inputs: Sequence[Any], knobs: dict[str, Any]) -> set[str] | None:
        """The knobs ``node`` reads under ``knobs`` on (a seeded sample of at most
        ``PROBE_INPUTS`` of) ``inputs``; ``None`` when that cannot be told, as on a server
        (which does not say what a node read, and the node is not run here)."""
        if self.server is not None:
            return None
        inputs = list(inputs)
        if len(inputs) > PROBE_INPUTS:
            inputs = random.Random(f"{self.config.seed}:probe:{node}").sample(inputs, PROBE_INPUTS)
        sent_from = self.sent_from(node)
        graph_states = None if sent_from is None else [sent_from.get(_canonical(st)) for st in inputs]
        return knobs_read(self.system, node, inputs, knobs, graph_states)

    def nodes_using_lrf(self, knobs: dict[str, Any]) -> list[str]:
        """The nodes whose knobs still need the LRF under ``knobs``: a node with recorded
        inputs, with a knob whose proposer ranks with the LRF at today's run cost
        (``Proposer.uses_lrf``) and which the node reads (or whose reads cannot be told).
        Pairs are collected, and the LRF trained and adapted, for these nodes only."""
        cost = self.run_cost()
        nodes = []
        for node in self.reached_nodes():
            users = [k.name for k in self.tunable_knobs(node) if self.proposers[k.kind].uses_lrf(cost)]
            if not users:
                continue
            read = self.knobs_read(node, [self.decode(c.inputs) for c in self.node_calls(node)[0]], knobs)
            if read is None or read & set(users):
                nodes.append(node)
        return nodes

    def run_cost(self) -> RunCost:
        """What a system run of this job has cost so far, judged by ``config.cheap_runs``."""
        return self.config.cheap_runs.judge(*queries.run_cost(self.store, self.job_id))

    def pair_costs(self, nodes: Sequence[str], config: PairConfig) -> list[PairCost]:
        """What pairs for each of ``nodes`` can cost under ``config``: the examples of its
        recorded calls the step may serve, at the runs one call is planned to cost
        (``loop.pair_plan``)."""
        costs = []
        for node in nodes:
            calls, run_keys = self.node_calls(node)
            examples = len({run_keys[c.run_id] for c in calls})
            exact = config.exact_last and self.system.graph.ends_run(node)
            calls_llm = bool(queries.llm_calls_of(self.store, [c.id for c in calls]))
            specs = [s for s in self.system.knobs.values() if s.node == node]  # as the collection samples them
            runs = planned_runs_per_call(specs, config, calls_llm, exact)
            costs.append(PairCost(node, min(examples, config.calls_per_node or examples), runs))
        return costs

    def collect_pairs(self, knobs: dict[str, Any], config: PairConfig, stage: str,
                      example_keys: Sequence[str] | None = None, nodes: Sequence[str] | None = None,
                      max_runs: int | None = None) -> tuple[list[PreferencePair], PairStats]:
        """Preference pairs for every tunable node (or only ``nodes``; none for an empty list)
        from the recorded collect runs (replacing whatever an interrupted run of the same
        ``stage`` stored).

        ``max_runs`` caps the system runs (rollouts) of the whole collection: each node in
        turn gets an equal share of what is left (a node that needs less leaves the rest to
        the nodes after it), and no node exceeds its share. Nodes after which the run ends
        go first under ``config.exact_last``: their candidates cost no run, so the other
        nodes share the whole allowance.
        """
        delete_stage(self.store, self.job_id, stage)
        pairs: list[PreferencePair] = []
        stats = PairStats()
        todo = list(self.tunable_nodes() if nodes is None else nodes)
        ends = {node: self.system.graph.ends_run(node) for node in todo}
        if config.exact_last:
            todo.sort(key=lambda node: not ends[node])
        for i, node in enumerate(todo):
            share = None if max_runs is None else max(0, max_runs - stats.system_runs) // (len(todo) - i)
            calls, run_keys = self.node_calls(node, example_keys)
            node_pairs, node_stats = collect_node_pairs(
                self.system, node, calls, self._examples, run_keys, self.metric, knobs, config,
                run_node=functools.partial(run_node, callbacks=self._replay_callbacks(), server=self.server),
                rollout_from=functools.partial(rollout_from, server=self.server), recorded_step=self.recorded_step,
                store=self.store, job_id=self.job_id, stage=stage, max_runs=share, ends_run=ends[node],
                run_scores=queries.run_scores(self.store, [c.run_id for c in calls]) if config.room_first else None)
            pairs += node_pairs
            stats.add(node_stats)
        return pairs, stats

    def recorded_step(self, call: m.NodeCall) -> RecordedStep:
        """Where a recorded call stood in its step (its input, state and sibling tasks)."""
        return recorded_step(self.store, call, self.system.types)

    def decode(self, raw: Any) -> Any:
        """A recorded value back as the graph saw it (its own state types allowed, nothing else)."""
        return serde.from_json(raw, self.system.types)

    def llm_prompts(self, calls: Sequence[m.NodeCall]) -> list[tuple[dict, Any]]:
        """(input state, chat messages as sent) of the LLM calls made inside ``calls``."""
        by_call = {c.id: c for c in calls}
        return [(self.decode(by_call[r.node_call_id].inputs), r.messages)
                for r in queries.llm_calls_of(self.store, list(by_call)) if r.messages]


def _tunable_knobs(system: System, config: OptimizeConfig, node: str) -> list[KnobSpec]:
    specs = [s for s in system.knobs.values() if s.node == node and s.kind in config.kinds]
    return sorted(specs, key=lambda s: config.kinds.index(s.kind))


def _canonical(value: Any) -> str:
    """A recorded value's JSON, as a key that survives copies of the value."""
    return json.dumps(serde.to_json(value), sort_keys=True, default=str)
