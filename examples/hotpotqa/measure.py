"""Measure HotpotQA's headroom on val: the default config against other values of ``top_k``,
each a full graph run, paired per example.

``python -m examples.hotpotqa.measure --top-k 2 5``; docs/examples/hotpotqa.md records the output.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from examples import hotpotqa
from examples.paper_eval import evaluate, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N val examples (default: all)")
    parser.add_argument("--top-k", type=int, nargs="+", default=[2, 5], help="values tried besides the default")
    args = parser.parse_args()
    examples = hotpotqa.load_split("val", limit=args.limit)
    configs = [hotpotqa.AgentConfig(), *(hotpotqa.AgentConfig(top_k=k) for k in args.top_k)]
    start = time.perf_counter()
    # all configs at once, so that the model server batches their requests together
    with ThreadPoolExecutor(len(configs)) as pool:
        runs = list(pool.map(lambda config: evaluate(hotpotqa, examples, config), configs))
    print(f"val n={len(examples)}, {len(configs)} configs: {time.perf_counter() - start:.0f} s")
    base = [score for _, score in runs[0]]
    for i, (config, results) in enumerate(zip(configs, runs)):
        scores = [score for _, score in results]
        gain, stderr = paired(base, scores)
        print(f"top_k={config.top_k}{' (default)' if i == 0 else '':<10} F1 {statistics.fmean(scores):.3f}  "
              f"vs default {gain:+.3f} +- {stderr:.3f}")


if __name__ == "__main__":
    main()
