"""``python -m examples.hotpotqa --split val --limit 20``: score the unoptimized system."""

from examples import hotpotqa
from examples.paper_eval import main

main(hotpotqa)
