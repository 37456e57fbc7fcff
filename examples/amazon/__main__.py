"""``python -m examples.amazon --split val --limit 20``: score the unoptimized system."""

from examples import amazon
from examples.paper_eval import main

main(amazon)
