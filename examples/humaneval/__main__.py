"""``python -m examples.humaneval --split val --limit 20``: score the default config (or ``--set`` overrides)."""

from examples import humaneval
from examples.paper_eval import main

main(humaneval)
