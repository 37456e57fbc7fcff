"""Tool specs, forced-call schemas and the parsing of calls out of a completion (no model)."""

from __future__ import annotations

import json

import pytest

from optimas_lg.llm.tools import Tools, hermes_messages

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
ADD = {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}


def tools(choice=None) -> Tools:
    found = Tools.from_request([{"type": "function", "function": WEATHER}, {"type": "function", "function": ADD}],
                               choice)
    assert found is not None
    return found


def test_tagged_and_bare_calls_are_parsed_and_unknown_ones_stay_text():
    auto = tools()
    text = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    content, calls = auto.parse(text)
    assert content == "Checking." and [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert auto.parse('```json\n{"name": "add", "arguments": {"a": 1}}\n```')[1][0].arguments == {"a": 1}
    for text in ['{"name": "nope", "arguments": {}}', "<tool_call>{not json}</tool_call>", "Sunny."]:
        assert auto.parse(text) == (text, [])
    assert tools("none").parse(text) == (text, [])


def test_a_forced_call_is_the_prefilled_block_held_to_the_tools_schemas():
    required = tools("required")
    schema = required.call_schema()
    assert required.prefill == "<tool_call>\n" and [v["properties"]["name"]["enum"] for v in schema["anyOf"]] \
        == [["get_weather"], ["add"]]
    named = tools({"type": "function", "function": {"name": "add"}})
    assert named.call_schema()["properties"]["arguments"] == ADD["parameters"]
    content, calls = named.parse('{"name": "add", "arguments": {"a": 2}}')
    assert content is None and json.loads(calls[0].to_openai()["function"]["arguments"]) == {"a": 2}
    assert tools().call_schema() is None and tools().prefill == ""


@pytest.mark.parametrize("spec, choice, message", [
    ([{"type": "function", "function": {}}], None, r"tools\[0\] is not a function tool"),
    ([{"type": "function", "function": ADD}], {"type": "function", "function": {"name": "mul"}}, "'mul'"),
    ([{"type": "function", "function": ADD}], "always", "is not none, auto, required"),
    (None, "required", "tool_choice needs tools"),
])
def test_tools_that_cannot_be_served_say_why(spec, choice, message):
    with pytest.raises(ValueError, match=message):
        Tools.from_request(spec, choice)


def test_without_a_tool_template_calls_and_results_become_plain_turns():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
                {"role": "tool", "content": "Sunny."}]
    system, user, call, result = hermes_messages(messages, tools())
    assert system["content"].startswith("Be brief.\n\n# Tools") and '"name": "add"' in system["content"]
    assert user == messages[1]
    assert call["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert result == {"role": "user", "content": "<tool_response>\nSunny.\n</tool_response>"}
