"""Which models an example system's model-selection knobs may choose from here."""

from __future__ import annotations

import os

from optimas_lg.llm.registry import known_models

LOCAL_MODEL = "local/smollm2-135m"
HOSTED_MODEL = "openai/gpt-4o-mini"


def model_options() -> list[str]:
    """The default local model, the other local models installed here, and a hosted one when
    ``OPENAI_API_KEY`` is set."""
    hosted = [HOSTED_MODEL] if os.environ.get("OPENAI_API_KEY") else []
    return list(dict.fromkeys([LOCAL_MODEL, *known_models(), *hosted]))
