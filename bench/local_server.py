"""Completion tokens/s of the local model server at concurrency 1, 4 and 8.

The same 32 greedy requests (max_tokens 48) go to one in-process server from 1, 4 or
8 client threads; continuous batching should turn concurrency into throughput (goal:
>= 4x at 8). Plain ``transformers.generate``, one prompt at a time, is the reference.
The server's own count of rows per decode step shows how full its batches ran. The
same server in bfloat16 (``OPTIMAS_LG_LLM_DTYPE=bfloat16``, opt-in: batched greedy text
may then differ from unbatched) is measured too. Tokens per CPU-second are reported as
well: on a machine shared with other jobs, wall-clock throughput measures the
neighbours as much as the server. Writes docs/bench/local_server.json and prints a table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads collapse on shared cores

import json  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import torch  # noqa: E402

from optimas_lg.llm import load_model_and_tokenizer, start_server  # noqa: E402
from optimas_lg.llm.registry import DTYPE_ENV  # noqa: E402

MODEL = "local/smollm2-135m"
MAX_TOKENS = 48
REQUESTS = 32
QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Explain gravity in one sentence.",
    "What is 12 times 12?",
    "Write a haiku about the sea.",
    "Who wrote Romeo and Juliet?",
    "What is photosynthesis?",
    "Give me a synonym for happy.",
]
OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "local_server.json"


def transformers_reference(prompts: list[str]) -> dict:
    model, tokenizer = load_model_and_tokenizer(MODEL)
    tokens, start, cpu = 0, time.perf_counter(), time.process_time()
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=MAX_TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        tokens += out.shape[1] - ids.input_ids.shape[1]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"setting": "transformers.generate, one at a time", "tokens": tokens, "seconds": seconds, "cpu_seconds": cpu}


def server_run(base_url: str, prompts: list[str], concurrency: int, label: str) -> dict:
    def call(prompt: str) -> int:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        }
        response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        return response.json()["usage"]["completion_tokens"]

    before = httpx.get(f"{base_url}/health").json()["batching"]
    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(call, prompts))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = httpx.get(f"{base_url}/health").json()["batching"]
    steps = after["decode_steps"] - before["decode_steps"]
    rows = after["row_steps"] - before["row_steps"]
    return {"setting": f"server {label}, concurrency {concurrency}", "dtype": label, "concurrency": concurrency,
            "tokens": tokens, "seconds": seconds, "cpu_seconds": cpu,
            "mean_rows_per_step": rows / steps if steps else 0.0}


def server_rows(prompts: list[str], dtype: str) -> list[dict]:
    """Concurrency 1, 4 and 8 against one server whose weights are in ``dtype``."""
    os.environ[DTYPE_ENV] = dtype
    with start_server(models=[MODEL], max_batch=8) as server:
        server_run(server.base_url, prompts[:2], 2, dtype)  # warm-up
        return [server_run(server.base_url, prompts, c, dtype) for c in (1, 4, 8)]


def main() -> None:
    prompts = [QUESTIONS[i % len(QUESTIONS)] for i in range(REQUESTS)]
    rows = [transformers_reference(prompts)]
    rows += server_rows(prompts, "float32") + server_rows(prompts, "bfloat16")
    for row in rows:
        row["tokens_per_s"] = row["tokens"] / row["seconds"]
        row["tokens_per_cpu_s"] = row["tokens"] / row["cpu_seconds"]
    first = {row.get("dtype"): row for row in reversed(rows)}  # each server's concurrency-1 row
    for row in rows:
        own = first[row.get("dtype", "float32")]
        row["ratio_to_concurrency_1"] = row["tokens_per_s"] / own["tokens_per_s"]
        row["cpu_ratio_to_concurrency_1"] = row["tokens_per_cpu_s"] / own["tokens_per_cpu_s"]
        row["ratio_to_float32_concurrency_1"] = row["tokens_per_s"] / first["float32"]["tokens_per_s"]
    result = {
        "model": MODEL,
        "requests": REQUESTS,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'setting':38} {'tokens':>6} {'wall s':>7} {'tok/s':>6} {'x c1':>5} {'x f32 c1':>8} "
          f"{'tok/cpu-s':>9} {'x c1':>5} {'rows/step':>9}")
    for row in rows:
        print(
            f"{row['setting']:38} {row['tokens']:>6} {row['seconds']:>7.1f} {row['tokens_per_s']:>6.1f} "
            f"{row['ratio_to_concurrency_1']:>5.2f} {row['ratio_to_float32_concurrency_1']:>8.2f} "
            f"{row['tokens_per_cpu_s']:>9.1f} {row['cpu_ratio_to_concurrency_1']:>5.2f} "
            f"{row.get('mean_rows_per_step', 1.0):>9.2f}"
        )
    print("x c1: ratio to the same server at concurrency 1; x f32 c1: ratio to the float32 server at concurrency 1")
    print(f"(load average {result['load_average_1min_at_end']:.1f} on {os.cpu_count()} cores; written to {OUT})")


if __name__ == "__main__":
    main()
