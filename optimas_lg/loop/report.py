"""The optimization report: a Markdown (and HTML) account of one optimize job, with plots.

Everything comes from the store: the job row, its optimizer events (evaluation, lrf,
proposal, decision, budget, final) and the config versions they name. A job that is
still running or was killed lacks some events; the report then says what is missing
and shows what there is.
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from matplotlib.figure import Figure  # not pyplot: renders with Agg, no global backend state

from optimas_lg.errors import StoreError
from optimas_lg.home import subdir
from optimas_lg.loop.budget import Spent
from optimas_lg.loop.records import Change, Decision, Evaluation, Final, LRFEvent, NodePicked, NodesSkipped
from optimas_lg.pricing import PriceTable, Usage, usd
from optimas_lg.proposers import Proposal
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m

R = TypeVar("R")

TEXT_WIDTH = 40  # a longer string knob is shown as a text with a line diff, not in a table
ACCEPTED, REJECTED, BASELINE = "#2e7d32", "#c62828", "#616161"


# -- reading the job -------------------------------------------------------------------
@dataclass(frozen=True)
class Logged(Generic[R]):
    """A record with where the loop logged it."""

    iteration: int | None
    node: str | None
    record: R


@dataclass
class JobHistory:
    """One job's row and its optimizer events, read back into their records (each list
    in recorded order)."""

    job: m.Job
    evaluations: list[Logged[Evaluation]] = field(default_factory=list)
    lrf: list[Logged[LRFEvent]] = field(default_factory=list)
    proposals: list[Logged[Proposal]] = field(default_factory=list)
    decisions: list[Logged[Decision]] = field(default_factory=list)
    budget: list[Logged[Spent]] = field(default_factory=list)
    skipped: list[Logged[NodesSkipped]] = field(default_factory=list)
    picks: list[Logged[NodePicked]] = field(default_factory=list)
    final: Final | None = None
    unreadable: list[str] = field(default_factory=list)  # events that do not read back as their record

    def evaluation(self, split: str, label: str) -> Evaluation | None:
        """The last evaluation of ``split`` with ``label`` (e.g. val/baseline), if any."""
        found = [e.record for e in self.evaluations if e.record.split == split and e.record.label == label]
        return found[-1] if found else None

    def accepted(self) -> list[Decision]:
        return [d.record for d in self.decisions if d.record.accepted]

    def validated(self) -> list[Logged[Decision]]:
        """The decisions on a change the gate ran on validation data (``Decision.validated``)."""
        return [d for d in self.decisions if d.record.validated]


_READERS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "evaluation": ("evaluations", Evaluation.from_json), "lrf": ("lrf", LRFEvent.from_json),
    "proposal": ("proposals", Proposal.from_json), "decision": ("decisions", Decision.from_json),
    "budget": ("budget", Spent.from_json), "skipped": ("skipped", NodesSkipped.from_json),
    "pick": ("picks", NodePicked.from_json)}


def load_history(store: Store, job_id: int) -> JobHistory:
    """Read a job and its events; raises ``StoreError`` when the job does not exist."""
    job = store.job(job_id)
    if job.kind != "optimize":
        raise StoreError(f"job {job_id} is a {job.kind!r} job; reports are of optimize jobs "
                         "(`optimas-lg store jobs` lists them)")
    history = JobHistory(job)
    for event in queries.job_events(store, job_id):
        try:
            if event.kind == Final.kind:
                history.final = Final.from_json(event.payload)
            elif event.kind in _READERS:
                name, read = _READERS[event.kind]
                getattr(history, name).append(Logged(event.iteration, event.node, read(event.payload)))
        except (TypeError, ValueError, KeyError) as exc:  # written by another version, or damaged
            history.unreadable.append(f"{event.kind} event {event.id} (iteration {event.iteration}): {exc}")
    return history


def report_dir(store: Store, job_id: int) -> Path:
    """Where a job's report goes by default: under the storage home, by store and job."""
    return subdir("reports") / store.identity / str(job_id)


# -- summary figures -------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """Before/after scores and the config pair to diff; ``partial`` when not from a final event."""

    val_before: float | None
    val_after: float | None
    test_before: float | None
    test_after: float | None
    initial_config_id: int | None
    best_config_id: int | None
    stop_reason: str
    partial: bool


def outcome(history: JobHistory) -> Outcome:
    """The job's result: from its final event, else reconstructed from the events so far."""
    final = history.final
    if final is not None:
        return Outcome(final.val_before, final.val_after, final.test_before, final.test_after,
                       final.initial_config_id, final.best_config_id, final.stop_reason or "?", partial=False)
    baseline = history.evaluation("val", "baseline")
    accepted = history.accepted()
    val_after = accepted[-1].val_proposed if accepted else (baseline.mean if baseline else None)
    initial = baseline.config_id if baseline else None
    best = next((d.config_id for d in reversed(accepted) if d.config_id), initial)
    test = history.evaluation("test", "baseline")
    job = history.job
    error = (job.meta or {}).get("error")
    why = f"{job.status}: {error}" if error else f"not finished (the job is {job.status!r}, no final event)"
    return Outcome(baseline.mean if baseline else None, val_after, test.mean if test else None, None,
                   initial, best, why, partial=True)


def missing_parts(history: JobHistory) -> list[str]:
    """Plain-language notes on what this job's events do not cover."""
    notes = []
    if history.job.kind != "optimize":
        notes.append(f"job {history.job.id} is a {history.job.kind!r} job, not an optimize job.")
    if history.final is None:
        state = {"running": "still running", "interrupted": f"interrupted (resume it: optimize --resume "
                 f"{history.job.id})", "failed": "failed (its error is the stop reason)"}
        notes.append(f"no final event: the job is {state.get(history.job.status, repr(history.job.status))}; "
                     "before/after figures are the best known so far and there is no final test score.")
    if history.evaluation("val", "baseline") is None:
        notes.append("no baseline validation evaluation.")
    if history.unreadable:
        notes.append(f"{len(history.unreadable)} recorded events could not be read (another optimas-lg version "
                     "wrote them, or they are damaged): " + "; ".join(history.unreadable))
    for found, what in [(history.lrf, "no LRF training events (no ranking accuracy)."),
                        (history.proposals, "no proposals recorded."),
                        (history.decisions, "no accept/reject decisions recorded."),
                        (history.budget, "no budget events (spend unknown).")]:
        if not found:
            notes.append(what)
    return notes


# -- plots -----------------------------------------------------------------------------
def _figure(rows: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.5, 3.4 if rows == 1 else 2.5 * rows), dpi=110, layout="constrained")
    return fig, fig.subplots(rows, 1, sharex=True) if rows > 1 else fig.subplots()


def plot_validation(history: JobHistory, path: Path) -> Path | None:
    """Validation score per iteration: current score, proposals accepted/rejected, baseline."""
    decisions = history.decisions
    first = history.evaluation("val", "baseline")
    baseline = first.mean if first else None
    if not decisions and baseline is None:
        return None
    fig, ax = _figure()
    if baseline is not None:
        ax.axhline(baseline, color=BASELINE, linestyle="--", linewidth=1, label=f"baseline {baseline:.3f}")
    steps_x, steps_y = ([0], [baseline]) if baseline is not None else ([], [])
    for accepted, color, label in [(True, ACCEPTED, "accepted"), (False, REJECTED, "rejected")]:
        chosen = [d for d in history.validated() if d.record.accepted == accepted]
        ax.scatter([d.iteration or 0 for d in chosen], [d.record.val_proposed for d in chosen],
                   color=color, marker="o" if accepted else "x", s=40, zorder=3, label=label)
    for d in decisions:
        steps_x.append(d.iteration or 0)
        steps_y.append(d.record.val_proposed if d.record.accepted else d.record.val_current)
    if steps_x:
        ax.step(steps_x, steps_y, where="post", color="#1565c0", linewidth=1.5, label="current config")
    final = history.final
    if final is not None:
        last = max(steps_x, default=0)
        ax.scatter([last], [final.val_after], marker="*", s=160, color="#f9a825", zorder=4,
                   label=f"final {final.val_after:.3f}")
    ax.set(xlabel="iteration", ylabel="validation score", title="Validation score per iteration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path)
    return path


def _node_order(names: set[str]) -> list[str]:
    """Node names sorted, aggregate keys such as ``__overall__`` last."""
    return sorted(names, key=lambda n: (n.startswith("__"), n))


def plot_lrf(history: JobHistory, path: Path) -> Path | None:
    """Ranking accuracy per node: the first and latest LRF versions."""
    events = history.lrf
    if not events:
        return None
    shown = [events[0]] + ([events[-1]] if len(events) > 1 else [])
    nodes = _node_order({n for e in shown for n in e.record.accuracy})
    fig, ax = _figure()
    width = 0.8 / len(shown)
    for i, e in enumerate(shown):
        acc = e.record.accuracy
        label = f"LRF {e.record.stage}" + (f" (it. {e.iteration})" if e.iteration else "")
        xs = [j + (i - (len(shown) - 1) / 2) * width for j in range(len(nodes))]
        bars = ax.bar(xs, [acc.get(n, 0.0) for n in nodes], width, label=label, color=f"C{i}", alpha=0.9)
        ax.bar_label(bars, labels=[f"{acc[n]:.2f}" if n in acc else "" for n in nodes], fontsize=7)
    ax.axhline(0.5, color=BASELINE, linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(range(len(nodes)), [n.strip("_") for n in nodes])
    ax.set(ylim=(0, 1.25), yticks=[0, 0.25, 0.5, 0.75, 1.0], ylabel="pairwise ranking accuracy",
           title="Local reward functions: ranking accuracy on pairs not trained on")
    ax.legend(fontsize=8, loc="upper center", ncols=len(shown) + 1, frameon=False)
    fig.savefig(path)
    return path


def plot_budget(history: JobHistory, path: Path) -> Path | None:
    """Cumulative system runs and LLM tokens over iterations."""
    events = [e.record for e in history.budget]
    if not events:
        return None
    xs = [e.iterations for e in events]
    fig, (runs, tokens) = _figure(rows=2)
    runs.plot(xs, [e.system_runs for e in events], marker="o", color="C0")
    runs.set(ylabel="system runs", title="Budget spent")
    tokens.plot(xs, [e.llm_tokens for e in events], marker="o", color="C1")
    tokens.set(ylabel="LLM tokens", xlabel="iteration")
    tokens.yaxis.set_major_formatter("{x:,.0f}")
    for ax in (runs, tokens):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.savefig(path)
    return path


# -- markdown pieces -------------------------------------------------------------------
def _num(value: Any, signed: bool = False) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:+.3f}" if signed else (f"{value:.3f}" if isinstance(value, float) else str(value))
    return "—" if value is None else str(value)


def _rounded(value: Any) -> Any:
    """``value`` with every float at 6 significant digits (0.30000000000000004 shows as 0.3)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _shown(value: Any) -> str:
    """A value on one line, whole (tables are never cut: long texts wrap in the cell)."""
    if isinstance(value, str):
        text = value
    elif value in ({}, [], ()):
        text = "(empty)"
    else:
        text = json.dumps(_rounded(value), default=str)
    return " ".join(text.split())


def _cell(value: Any) -> str:
    return _shown(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _fenced(text: str, lang: str = "text") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _code(value: Any) -> str:
    text = _cell(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _line_diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++")))


def _is_text(value: Any, kind: str | None) -> bool:
    return kind == "prompt" or (isinstance(value, str) and ("\n" in value or len(value) > TEXT_WIDTH))


def _before_after(before: Any, after: Any) -> str:
    if before is None and after is None:
        return "—"
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
    delta = f" ({after - before:+.3f})" if numbers else ""
    return f"{_num(before)} → {_num(after)}{delta}"


def _accepted_of(history: JobHistory) -> str:
    """``2 of 3 changes validated (2 rounds kept the current values)``."""
    kept = sum(not d.record.changes for d in history.decisions)
    untested = sum(bool(d.record.changes) and not d.record.validated for d in history.decisions)
    notes = [f"{kept} round{'s' * (kept != 1)} kept the current values"] if kept else []
    notes += [f"{untested} change{'s' * (untested != 1)} not validated for lack of runs"] if untested else []
    return (f"{len(history.accepted())} of {len(history.validated())} changes validated"
            + (f" ({'; '.join(notes)})" if notes else ""))


def summary_section(history: JobHistory, result: Outcome) -> str:
    job, budget, decisions = history.job, history.budget, history.decisions
    iterations = budget[-1].record.iterations if budget else len({d.iteration for d in decisions})
    so_far = " (so far)" if result.partial else ""
    rows = [("target", f"`{job.target}`" if job.target else "—"), ("status", job.status),
            ("started", f"{job.created_at:%Y-%m-%d %H:%M:%S}"),
            ("finished", f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else "—"),
            ("stop reason", result.stop_reason),
            ("validation", _before_after(result.val_before, result.val_after) + so_far),
            ("test", _before_after(result.test_before, result.test_after)),
            ("iterations", str(iterations)),
            ("accepted changes", _accepted_of(history))]
    if budget:
        spent = budget[-1].record
        sources = ", ".join(f"{source} {n:,}" for source, n in spent.tokens_by_source.items() if n)
        rows.append(("budget spent", f"{spent.system_runs:,} system runs, {spent.llm_tokens:,} LLM tokens"
                     + (f" ({sources})" if sources else "") + f", {spent.seconds:.0f} s, {usd(spent.cost)}"))
    return "## Summary\n\n" + _table(["", ""], [[f"**{k}**", v] for k, v in rows])


def warnings(history: JobHistory) -> list[str]:
    """What makes the result less trustworthy than the scores suggest: an LRF head that
    ranks pairs it was not trained on no better than a coin."""
    notes = []
    for e in history.lrf:
        r = e.record
        for node, acc in r.at_or_below_chance().items():
            n = (r.n_eval_by_node or {}).get(node)
            where = "held-out" if r.stage == "initial" else f"fresh (iteration {e.iteration})"
            notes.append(f"the LRF head of `{node}` ({r.stage}) ranks {where} pairs at or below chance: accuracy "
                         f"{acc:.2f}" + (f" on n={n} pairs" if n is not None else "")
                         + "; proposals for this node follow noise (collect more pairs: pairs.samples, "
                         "pairs.calls_per_node).")
    return notes


def spend_section(store: Store, job: m.Job) -> str:
    """Tokens and money per node and model, priced by the job's price table."""
    prices = PriceTable(((job.meta or {}).get("config") or {}).get("prices"))
    usage = [Usage(*row) for row in queries.token_usage(store, job.id)]
    if not usage:
        return "## Spend per node\n\nNo LLM calls recorded."
    runs, _ = queries.job_spend(store, job.id, budgeted=False)
    spend = prices.spend(usage)
    rows = []
    for u in sorted(usage, key=lambda u: (u.node or "", u.model)):
        cost = prices.spend([u]).total if prices.price(u.model) is not None else None
        rows.append([f"`{u.node or '(outside nodes)'}`", f"`{u.model}`", f"{u.prompt_tokens:,}",
                     f"{u.completion_tokens:,}", "unpriced" if cost is None else usd(cost)])
    out = ["## Spend per node", "", _table(["node", "model", "prompt tokens", "completion tokens", "cost"], rows), "",
           f"Total {usd(spend.total)} over {runs:,} system runs ({usd(spend.total / max(runs, 1))} per run)."]
    if spend.unpriced:
        out.append(f"Unpriced models (not counted): {', '.join(spend.unpriced)}; price them in the `prices` setting.")
    return "\n".join(out)


def node_section(store: Store, history: JobHistory) -> str:
    """Per node: the validation gain of its accepted changes next to its latency and cost per
    run, under the initial and the best config (their evaluation runs)."""
    final = history.final
    if final is None:
        return "## Per node: gain, latency, cost\n\nNo final result yet."
    prices = PriceTable(((history.job.meta or {}).get("config") or {}).get("prices"))
    profiles = [queries.node_profile(store, history.job.id, cid, "eval")
                for cid in (final.initial_config_id, final.best_config_id)]

    def per_run_cost(profile: tuple, node: str) -> str:
        n_runs, _, tokens = profile
        usage = [Usage(*t) for t in tokens if t[0] == node]
        if not usage or not n_runs:
            return "—"
        spend = prices.spend(usage)
        return "unpriced" if spend.unpriced else usd(spend.total / n_runs)

    def latency(profile: tuple, node: str) -> str:
        _, mean = profile[1].get(node, (0, None))
        return "—" if mean is None else f"{mean:.3f} s"

    gains: dict[str, list[float]] = {}
    for d in history.accepted():
        gains.setdefault(d.node, []).append(d.val_proposed - d.val_current)
    nodes = sorted(set(profiles[0][1]) | set(profiles[1][1]) | set(gains))
    rows = [[f"`{node}`", str(len(gains.get(node, []))), f"{sum(gains.get(node, [])):+.3f}",
             f"{latency(profiles[0], node)} → {latency(profiles[1], node)}",
             f"{per_run_cost(profiles[0], node)} → {per_run_cost(profiles[1], node)}"] for node in nodes]
    head = ["node", "accepted changes", "val gain", "latency per call (initial → best)",
            "cost per run (initial → best)"]
    return "\n".join(["## Per node: gain, latency, cost", "", _table(head, rows), "",
                      f"Latency and cost from the evaluation runs of config {final.initial_config_id} (initial) "
                      f"and {final.best_config_id} (best); the gain is the sum of the node's accepted val gains."])


def settings_section(job: m.Job) -> str:
    settings = json.dumps(job.meta, indent=2, default=str) if job.meta else "{}"
    return "## Job settings\n\n" + _fenced(settings, "json")


def config_section(store: Store, history: JobHistory, result: Outcome) -> str:
    """The best config as a diff against the initial one: texts in full, the rest in a table."""
    out = ["## Final config vs initial", ""]
    initial = store.get(m.ConfigVersion, result.initial_config_id) if result.initial_config_id else None
    best = store.get(m.ConfigVersion, result.best_config_id) if result.best_config_id else None
    if initial is None or best is None:
        return "\n".join(out + ["Not available: the initial or best config is not recorded yet."])
    label = "Best config so far" if result.partial else "Best config"
    out += [f"{label}: #{best.id}; initial config: #{initial.id}.", ""]
    kinds = {p.record.knob: p.record.kind for p in history.proposals}
    old, new = initial.values, best.values
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
    texts = [k for k in changed if _is_text(old.get(k), kinds.get(k)) or _is_text(new.get(k), kinds.get(k))]
    others = [k for k in changed if k not in texts]
    if not changed:
        out.append("No knob changed.")
    if others:
        out += [_table(["knob", "initial", "final"],
                       [[f"`{k}`", _code(old.get(k)), _code(new.get(k))] for k in others]), ""]
    for k in [k for k in others if kinds.get(k) == "demos" and new.get(k)]:
        out += [f"### `{k}`: where each demo came from", "", _demo_sources(new[k]), ""]
    for k in texts:
        before, after = str(old.get(k, "")), str(new.get(k, ""))
        out += [f"### `{k}`", "", "Initial:", "", _fenced(before), "", "Final:", "", _fenced(after), "",
                "Line changes:", "", _fenced(_line_diff(before, after), "diff"), ""]
    unchanged = [k for k in sorted(old) if k in new and old[k] == new[k]]
    if unchanged:
        out.append("Unchanged: " + ", ".join(f"`{k}`={_code(old[k])}" for k in unchanged))
    return "\n".join(out).rstrip()


def _demo_sources(demos: list[dict]) -> str:
    """One row per demo: the training example, run score and node call it was recorded in."""
    rows = [[_code(d.get("source", {}).get("example")), _num(d.get("source", {}).get("score")),
             _code(d.get("source", {}).get("call")), _code(d.get("input")), _code(d.get("output"))] for d in demos]
    return _table(["example", "run score", "node call", "input", "output"], rows)


def _changes(changes: dict[str, Change]) -> str:
    return "<br>".join(f"`{k}`: {_cell(c.old)} → {_cell(c.new)}" for k, c in changes.items()) or "—"


def _decision_row(e: Logged[Decision]) -> list[str]:
    d = e.record
    if not d.validated:  # nothing was run on validation data: no evidence to show
        return [_num(e.iteration), e.node or "—", _changes(d.changes), "—", "—", "—", "❌ no", _cell(d.rule),
                _cell(d.reason)]
    return [_num(e.iteration), e.node or "—", _changes(d.changes),
            f"{_num(d.val_current)} vs {_num(d.val_proposed)}", f"{_num(d.mean_diff, signed=True)} ± {_num(d.stderr)}",
            _num(d.n), "✅ yes" if d.accepted else "❌ no", _cell(d.rule), _cell(d.reason)]


def _proposal_row(e: Logged[Proposal]) -> list[str]:
    p = e.record
    cost = ", ".join(f"{k}={_num(v)}" for k, v in dataclasses.asdict(p.cost).items())
    value = f"{_cell(p.previous)} → {_cell(p.value)}" if p.changed else f"unchanged: {_cell(p.value)}"
    return [_num(e.iteration), e.node or "—", f"`{p.knob}`", p.kind, value,
            f"{_num(p.current_score)} → {_num(p.proposed_score)}",
            _num(p.estimated_gain, signed=True), str(len(p.candidates)), _cell(p.details.get("trust_decision") or "—"),
            cost]


def _lrf_row(e: Logged[LRFEvent]) -> list[str]:
    r = e.record
    acc = ", ".join(f"{n.strip('_')}: {r.accuracy[n]:.2f}" for n in _node_order(set(r.accuracy)))
    return [r.stage, _num(e.iteration), _num(r.checkpoint_id), _num(r.n_pairs), _num(r.train_loss), acc or "—"]


def _evaluation_row(e: Logged[Evaluation]) -> list[str]:
    r = e.record
    return [_num(e.iteration), r.label, r.split, _num(r.config_id), _num(r.mean), _num(len(r.scores)),
            _num(r.n_failed), _num(r.repeats)]


def _pick_row(e: Logged[NodePicked]) -> list[str]:
    return [_num(e.iteration), f"`{e.record.node}`", e.record.reason]


def _skipped_row(e: Logged[NodesSkipped]) -> list[str]:
    return [_num(e.iteration), ", ".join(f"`{n}`" for n in e.record.nodes), e.record.reason]


EVENT_TABLES: list[tuple[str, str, list[str], Callable[[Any], list[str]], str]] = [
    # section title, JobHistory list, header, one row per logged record, what to say when there are none
    ("Decision log", "decisions", ["iter", "node", "knob: old → new", "val current vs proposed",
                                   "diff ± stderr", "n", "accepted", "rule", "reason"], _decision_row,
     "No decisions recorded."),
    ("Proposals", "proposals", ["iter", "node", "knob", "kind", "current → proposed", "LRF score",
                                "est. gain", "candidates", "LRF trust", "cost"], _proposal_row,
     "No proposals recorded."),
    ("Local reward functions", "lrf", ["stage", "iter", "checkpoint", "pairs", "train loss",
                                       "ranking accuracy per node"], _lrf_row, "No lrf recorded."),
    ("Node order", "picks", ["iter", "node", "why"], _pick_row, "No round picked a node."),
    ("Nodes skipped", "skipped", ["iter", "nodes", "why"], _skipped_row,
     "None: every round could pick any tunable node."),
    ("Evaluations", "evaluations", ["iter", "label", "split", "config", "mean", "n", "failed", "repeats"],
     _evaluation_row, "No evaluations recorded."),
]


def event_table_section(history: JobHistory, title: str, name: str, header: list[str],
                        row: Callable[[Any], list[str]], empty: str) -> str:
    logged = getattr(history, name)
    body = _table(header, [row(e) for e in logged]) if logged else empty
    return f"## {title}\n\n{body}"


# -- HTML ------------------------------------------------------------------------------
def _inline(text: str) -> str:
    text = html.escape(text).replace("\\|", "|")
    text = re.sub(r"(`+) ?(.+?) ?\1", r"<code>\2</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def markdown_to_html(markdown: str, title: str) -> str:
    """The small Markdown subset this report uses (headings, tables, fences, images) as HTML."""
    body, lines, i = [], markdown.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if fence := re.match(r"^(`{3,})", line):
            end = next(j for j in range(i + 1, len(lines)) if lines[j] == fence.group(1))
            body.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:end]))}</code></pre>")
            i = end
        elif heading := re.match(r"^(#+) (.*)", line):
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image := re.match(r"^!\[(.*)\]\((.*)\)$", line):
            body.append(f'<p><img alt="{html.escape(image.group(1))}" src="{html.escape(image.group(2))}"></p>')
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not lines[i].startswith("|---"):
                    cells = re.split(r"(?<!\\)\|", lines[i].strip()[1:-1])
                    tag = "th" if not rows else "td"
                    rows.append("<tr>" + "".join(f"<{tag}>{_inline(c.strip())}</{tag}>" for c in cells) + "</tr>")
                i += 1
            body.append("<table>" + "".join(rows) + "</table>")
            continue
        elif line.startswith("- "):
            body.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}pre{background:#f5f5f5;padding:8px;"
             "white-space:pre-wrap}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- the report ------------------------------------------------------------------------
def render_markdown(store: Store, history: JobHistory, plots: list[Path]) -> str:
    """The whole report as Markdown; ``plots`` are image files beside the report."""
    result = outcome(history)
    parts = [f"# Optimization report: job {history.job.id}", "", summary_section(history, result)]
    warned = warnings(history)
    if warned:
        parts += ["", "## Warnings", ""] + [f"- ⚠ {note}" for note in warned]
    missing = missing_parts(history)
    if missing:
        parts += ["", "## Missing", ""] + [f"- {note}" for note in missing]
    if plots:
        parts += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})\n" for p in plots]
    parts += ["", node_section(store, history), "", spend_section(store, history.job), "",
              config_section(store, history, result)]
    for table in EVENT_TABLES:
        parts += ["", event_table_section(history, *table)]
    parts += ["", settings_section(history.job)]
    return "\n".join(parts).rstrip() + "\n"


def write_report(store: Store, job_id: int, out_dir: str | Path, html_copy: bool = True) -> Path:
    """Write ``report.md`` (and ``report.html``) with PNG plots for a job; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = load_history(store, job_id)
    plots = [p for p in (plot_validation(history, out / "validation.png"),
                         plot_lrf(history, out / "lrf_accuracy.png"),
                         plot_budget(history, out / "budget.png")) if p is not None]
    markdown = render_markdown(store, history, plots)
    report = out / "report.md"
    report.write_text(markdown, encoding="utf-8")
    if html_copy:
        (out / "report.html").write_text(markdown_to_html(markdown, f"optimas-lg job {job_id}"), encoding="utf-8")
    return report
