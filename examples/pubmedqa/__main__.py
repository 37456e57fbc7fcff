"""``python -m examples.pubmedqa --split val --limit 20``: score the unoptimized system."""

from examples import pubmedqa
from examples.paper_eval import main

main(pubmedqa)
