"""How well the learned local rewards agree with the global metric, against an LLM judge.

On the offline QA example's train and test splits (96 questions: the alignment is
measured on pairs held out by question, nothing is optimized here, and more questions
give every node more held-out pairs), with SmolLM2-135M behind one local server:
``optimas-lg pairs`` records the runs and builds preference pairs per node from
Monte-Carlo rollouts, ``optimas-lg lrf train`` trains the LRF (all-MiniLM-L6-v2
backbone) on the pairs of most examples, and ``optimas-lg lrf eval --judge`` ranks the
pairs of the held-out examples twice: by the LRF, and by SmolLM2 asked which output is
better for the final goal. The paper reports 77.96% (LRF) vs 49.52% (judge) on average.
Writes docs/bench/lrf_alignment.json and .md and prints the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optimas_lg.llm import start_server
from optimas_lg.llm.server import URL_ENV

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "bench" / "lrf_alignment"
MODEL = "local/smollm2-135m"
# A middling current config (two facts, two hops, final-name answers) so that candidates
# move the score both ways. query_mode "rewrite" searches with the model's rewrite alone,
# so the rewrite node's output decides what is retrieved and its LLM samples make real
# score gaps; with "both" the question's own words dominate the search and most of its
# candidates tie (measured: 38 held-out rewrite pairs, LRF and judge both 0.447).
KNOBS = {"query_mode": "rewrite", "top_k": 2, "hops": 2, "answer_format": "entity"}
SPLITS = ("train", "test")
PAIRS = ["--samples", "3", "--llm-samples", "4", "--temperature", "0.8", "--rollouts", "1", "--calls-per-node", "60"]
TRAIN = ["--epochs", "4", "--eval-fraction", "0.3"]
GOAL = ("Answer the question with exactly the right name, as short as possible "
        "(scored by token F1 against the gold answer).")
PAPER = {"lrf": 0.7796, "judge": 0.4952}


def cli(*args: str, env: dict[str, str]) -> tuple[dict, float]:
    """Run ``optimas-lg ARGS --json``; its JSON result and wall seconds."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "optimas_lg.cli.main", *args, "--json"], cwd=REPO, env=env,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out), time.perf_counter() - start


def markdown(result: dict) -> str:
    """The result as a short Markdown page."""
    ev, pairs = result["eval"], result["pairs"]
    judge = ev["judge"]["accuracy"]
    lines = ["# LRF alignment: learned local rewards vs an LLM judge", "",
             f"Offline QA example, {' and '.join(SPLITS)} splits ({pairs['runs']} questions), {MODEL} through the "
             f"local server; knobs {json.dumps(KNOBS)}; pairs: `{' '.join(PAIRS)}`; LRF: all-MiniLM-L6-v2, "
             f"`{' '.join(TRAIN)}` (split by example). "
             "Ranking accuracy on the pairs of the held-out examples (a tie or an unparsed verdict counts as wrong).",
             "",
             "| node | candidates (LLM-sampled) | pairs collected | held-out pairs | LRF | judge | judge unparsed |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for node, stats in pairs["nodes"].items():
        held = ev["eval_pairs_per_node"].get(node, 0)
        lrf = f"{ev['lrf'][node]:.3f}" if node in ev["lrf"] else "-"
        jdg = f"{judge[node]:.3f}" if node in judge else "-"
        lines.append(f"| {node} | {stats['candidates']} ({stats.get('llm_candidates', 0)}) | {stats['pairs']} | "
                     f"{held} | {lrf} | {jdg} | {ev['judge']['unparsed'].get(node, 0)} |")
    lines.append(f"| **overall** | {sum(s['candidates'] for s in pairs['nodes'].values())} | "
                 f"{sum(s['pairs'] for s in pairs['nodes'].values())} | {ev['eval_pairs']} | "
                 f"**{ev['lrf']['__overall__']:.3f}** | **{judge['__overall__']:.3f}** | "
                 f"{sum(ev['judge']['unparsed'].values())} |")
    seconds = result["seconds"]
    lines += ["", f"Paper (average over its systems): LRF {PAPER['lrf']:.4f}, judge {PAPER['judge']:.4f}.", "",
              f"Cost: {pairs['system_runs']} system runs; pairs {seconds['pairs']:.0f} s, "
              f"LRF training {seconds['train']:.0f} s, evaluation with the judge {seconds['eval']:.0f} s; "
              f"{seconds.get('total', sum(seconds.values())):.0f} s wall in all with the server start "
              f"({result['cpu_count']} cores, load average {result.get('load_average', '?')} at the start). "
              "Reproduce: `python bench/lrf_alignment.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    load = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory(prefix="lrf-alignment-") as home:
        env = {**os.environ, "OPTIMAS_LG_HOME": home, "OMP_WAIT_POLICY": "PASSIVE"}
        env.pop("OPTIMAS_LG_STORE", None)
        questions = Path(home) / "questions.jsonl"
        questions.write_text("".join((REPO / "examples" / "offline_qa" / "data" / f"{split}.jsonl").read_text()
                                     for split in SPLITS))
        with start_server([MODEL], in_process=False) as server:
            env[URL_ENV] = server.base_url
            pairs, t_pairs = cli("pairs", "examples/offline_qa/agent.py:builder",
                                 "--data", str(questions),
                                 "--metric", "examples/offline_qa/metric.py:metric",
                                 "--inputs", "question", "--labels", "answer", "--config", json.dumps(KNOBS),
                                 *PAIRS, env=env)
            job = str(pairs["job_id"])
            trained, t_train = cli("lrf", "train", job, *TRAIN, env=env)
            evaluated, t_eval = cli("lrf", "eval", job, "--judge", MODEL, "--goal", GOAL, env=env)
    result = {"model": MODEL, "knobs": KNOBS, "pairs_settings": PAIRS, "train_settings": TRAIN, "goal": GOAL,
              "paper": PAPER, "cpu_count": os.cpu_count(), "load_average": load, "pairs": pairs, "train": trained,
              "eval": evaluated,
              "seconds": {"pairs": t_pairs, "train": t_train, "eval": t_eval, "total": time.perf_counter() - start}}
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    OUT.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
