"""The response cache's key and eviction, without a model."""

from __future__ import annotations

import pytest

from optimas_lg.llm.generation import SamplingParams
from optimas_lg.llm.response_cache import ResponseCache, job_key

GREEDY = [SamplingParams(max_tokens=8)]


def test_the_key_holds_model_adapter_prompt_and_every_parameter():
    key = job_key("m", "", [1, 2, 3], GREEDY)
    assert key == job_key("m", "", [1, 2, 3], [SamplingParams(max_tokens=8)])
    others = [job_key("n", "", [1, 2, 3], GREEDY), job_key("m", "a@1", [1, 2, 3], GREEDY),
              job_key("m", "a@2", [1, 2, 3], GREEDY), job_key("m", "", [1, 2, 4], GREEDY),
              job_key("m", "", [1, 2, 3], [SamplingParams(max_tokens=9)]),
              job_key("m", "", [1, 2, 3], [SamplingParams(max_tokens=8, stop=("x",))]),
              job_key("m", "", [1, 2, 3], [SamplingParams(0.5, max_tokens=8, seed=1)]),
              job_key("m", "", [1, 2, 3], GREEDY * 2)]
    assert len({key, *others}) == 1 + len(others)


def test_an_unseeded_draw_has_no_key():
    assert job_key("m", "", [1], [SamplingParams(0.7)]) is None
    assert job_key("m", "", [1], [SamplingParams(), SamplingParams(0.7)]) is None
    assert job_key("m", "", [1], [SamplingParams(0.7, seed=0)]) is not None


def test_least_recently_used_answers_go_first():
    cache: ResponseCache[str] = ResponseCache(2)
    a, b, c = (job_key("m", "", [i], GREEDY) for i in range(3))
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == "A"  # a is now the most recently used
    cache.put(c, "C")
    assert (cache.get(a), cache.get(b), cache.get(c)) == ("A", None, "C")
    assert cache.stats.to_dict() == {"hits": 3, "misses": 1, "entries": 2}


def test_zero_entries_keeps_nothing_and_none_keys_are_ignored():
    off: ResponseCache[str] = ResponseCache(0)
    off.put(job_key("m", "", [1], GREEDY), "A")
    assert off.get(job_key("m", "", [1], GREEDY)) is None
    on: ResponseCache[str] = ResponseCache(4)
    on.put(None, "A")
    assert on.get(None) is None and on.stats.to_dict() == {"hits": 0, "misses": 0, "entries": 0}
    with pytest.raises(ValueError, match="max_entries"):
        ResponseCache(-1)
