"""The older one-system comparison, now a thin alias of the suite (``bench/suite``):
offline_qa with unoptimized, optimas-lg, DSPy MIPROv2 and GEPA, one seed, budget 200.
Its 2026-11-25 results stay in ``docs/bench/compare.json`` as history.

    .venv/bin/python bench/compare.py [--seeds 0,1,2] [--budget 200]   # any bench.suite option
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/compare.py` (make bench)

from bench.suite.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--systems", "offline_qa", "--methods", "unoptimized,optimas,mipro,gepa", "--seeds", "0",
                   *sys.argv[1:]]))
