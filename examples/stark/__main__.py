"""``python -m examples.stark --split val``: score the default config (or ``--set`` overrides)."""

from examples import stark
from examples.paper_eval import main

main(stark)
