"""``optuna``: plain Optuna TPE over all non-prompt knobs jointly, on the global metric.

What a user reaches for when tuning numeric and choice knobs: every trial runs the whole
system on the validation split (so ``budget // len(val)`` trials, the defaults first), and
the best trial's values are the result.
"""

from __future__ import annotations

from typing import Any

import optuna

from bench.suite.methods import NotApplicable, Outcome, Task
from optimas_lg.graph.knobs import KnobSpec

KINDS = {"choice", "int", "float"}


def suggest(trial: optuna.Trial, knob: KnobSpec) -> Any:
    space = knob.knob
    if knob.kind == "choice":
        return trial.suggest_categorical(knob.name, list(space.options))
    if knob.kind == "int":
        return trial.suggest_int(knob.name, space.low, space.high, step=space.step or 1, log=space.log)
    return trial.suggest_float(knob.name, space.low, space.high, step=space.step, log=space.log)


def optuna_search(task: Task) -> Outcome:
    knobs = task.knobs_of(KINDS)
    if not knobs:
        raise NotApplicable("no choice, int or float knobs to tune")
    n_trials = task.budget // len(task.val)
    if n_trials < 1:
        raise NotApplicable(f"a budget of {task.budget} runs is less than one trial ({len(task.val)} val runs)")
    base = task.defaults()

    def objective(trial: optuna.Trial) -> float:
        values = {**base, **{k.name: suggest(trial, k) for k in knobs}}
        scores = task.runner.scores(task.val, values)
        return sum(scores) / len(scores)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=task.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({k.name: base[k.name] for k in knobs})
    study.optimize(objective, n_trials=n_trials)
    best = {**base, **study.best_params}
    return Outcome(best, task.runner.runs, study.best_value,
                   {"trials": len(study.trials), "sampler": "TPESampler", "knobs": [k.name for k in knobs],
                    "trial_values": [t.value for t in study.trials]})
