"""Side by side: optimas-lg, its ablations and its peers on the same systems, budget and seeds.

One cell is (system, method, seed): optimize the system's compiled LangGraph graph with the
method under a budget of system runs, score the result on the system's test split, and
store one JSON result under ``docs/bench/suite/``. A cell already stored is skipped, so a
killed run resumes by running the same command again. ``--markdown``/``--plot`` rebuild the
results section of ``docs/benchmarks.md`` and its plot from stored results only.

    OPTIMAS_LG_HOME=$(mktemp -d) OPTIMAS_LG_MODEL_CACHE=$PWD/storage/models \\
        .venv/bin/python -m bench.suite --systems offline_qa --methods unoptimized,optuna,optimas --seeds 0,1,2
    .venv/bin/python -m bench.suite --markdown --plot
"""
