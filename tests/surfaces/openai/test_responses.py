"""POST /v1/responses through the official `openai` client: `responses.create`, single shot
and streamed, and the `responses.stream(...)` helper, whose event parser checks the order
of events (it refuses a delta before `response.created`) and assembles the final response.

Served by Ollama (the replayed recordings of a real Ollama's /api/chat) and through
fallback by the OpenAI test server's /chat/completions: the same translation as chat
completions, rendered as a Response.
"""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient
from openai import BadRequestError

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.openai_client import client_for
from tests.support.upstreams.openai import TOKENS

OPENING = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
CLOSING = ["response.output_text.done", "response.content_part.done", "response.output_item.done",
           "response.completed"]


async def test_a_response_served_by_ollama(gateway: TestClient, ollama: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        raw = await client.responses.with_raw_response.create(
            model="gemma3:1b", instructions="Be brief.", input="What is 2+2?")
        response = raw.parse()
    assert raw.headers["X-Gateway-Provider"] == "ollama"
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "2 + 2 = 4\n"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (128, 9, 137)
    assert response.instructions == "Be brief."
    sent = ollama.recorder.bodies("/api/chat")[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    assert "options" not in sent and sent["stream"] is True  # a single shot is read as a stream


async def test_input_items_become_the_conversation(gateway: TestClient, ollama: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        response = await client.responses.create(model="length-limited", max_output_tokens=20, temperature=0.5,
                                                 top_p=0.9,
                                                 input=[
            {"role": "developer", "content": "Answer in digits."},
            {"role": "user", "content": [
                {"type": "input_text", "text": "What is"}, {"type": "input_text", "text": "1+1?"}]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "2", "annotations": []}]},
            {"type": "message", "role": "user", "content": "And 2+2?"},
        ])
    sent = ollama.recorder.bodies("/api/chat")[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in digits."}, {"role": "user", "content": "What is\n1+1?"},
        {"role": "assistant", "content": "2"}, {"role": "user", "content": "And 2+2?"}]
    assert sent["options"] == {"num_predict": 20, "temperature": 0.5, "top_p": 0.9}
    assert (response.temperature, response.top_p) == (0.5, 0.9)
    # Recorded from a real Ollama whose answer ran into its token limit (chat_stream_length: a
    # single shot is read as a stream): an incomplete answer.
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens" and response.max_output_tokens == 20


async def test_a_streamed_response_served_by_ollama(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        stream = await client.responses.create(model="gemma3:1b", input="What is 2+2?", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:4] == OPENING and kinds[-4:] == CLOSING
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "2 + 2 = 4\n" and len(deltas) == 8  # one event per token Ollama sent
    done = events[-1].response
    assert done.status == "completed" and done.output_text == "2 + 2 = 4\n"
    assert done.usage is not None and done.usage.output_tokens == 9
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


async def test_a_stream_that_reaches_max_output_tokens_ends_incomplete(gateway: TestClient) -> None:
    """As OpenAI ends it: response.incomplete, the reason in incomplete_details (recorded from a real
    Ollama whose answer ran into its token limit: done_reason "length")."""
    async with client_for(gateway) as client:
        stream = await client.responses.create(model="length-limited", input="Tell me a story", stream=True,
                                               max_output_tokens=10)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:4] == OPENING and kinds[-4:] == [*CLOSING[:3], "response.incomplete"]
    final = events[-1].response
    assert final.status == "incomplete" and final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output[0].status == "incomplete"


@pytest.mark.parametrize(("model", "served_by", "tokens"), [
    ("gemma3:1b", "ollama", ["2", " +", " ", "2", " =", " ", "4", "\n"]),  # Ollama's recorded tokens
    ("missing-locally", "openai", TOKENS),
])
async def test_the_stream_helper(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, served_by: str,
    tokens: list[str],
) -> None:
    async with client_for(gateway) as client, client.responses.stream(
            model=model, input="Say hi", instructions="Be kind.") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas == tokens
    assert final.output_text == "".join(tokens) and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == (9 if served_by == "ollama" else len(TOKENS))
    upstream = ollama.recorder.bodies("/api/chat") if served_by == "ollama" else openai.recorder.bodies(
        "/v1/chat/completions")
    assert upstream[-1]["messages"] == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi"}]
    assert upstream[-1]["stream"] is True


async def test_a_single_response_through_fallback(gateway: TestClient, openai: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        raw = await client.responses.with_raw_response.create(
            model="missing-locally", input=[{"role": "user", "content": "Say hi"}], max_output_tokens=32)
        response = raw.parse()
    assert raw.headers["X-Gateway-Provider"] == "openai"
    assert response.output_text == "".join(TOKENS) and response.status == "completed"
    assert openai.recorder.bodies("/v1/chat/completions")[-1]["max_tokens"] == 32


async def test_the_stream_names_each_event_as_openai_does(gateway: TestClient) -> None:
    answer = await gateway.post("/v1/responses", json={"model": "gemma3:1b", "input": "What is 2+2?", "stream": True})
    assert answer.status == 200 and answer.headers["Content-Type"] == "text/event-stream"
    blocks = [b for b in (await answer.text()).split("\n\n") if b and not b.startswith(":")]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        assert json.loads(data_line[6:])["type"] == event_line[7:]
    assert "[DONE]" not in blocks[-1]


async def test_a_response_cut_mid_stream_ends_failed(make_gateway: GatewayFactory, openai: RunningUpstream) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    async with client_for(gateway) as client:
        stream = await client.responses.create(model="midstream-error", input="hi", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:4] == OPENING and kinds[-2:] == ["error", "response.failed"]
    assert events[-2].code == "upstream_unavailable"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    assert failed.output_text == "".join(TOKENS[:2])  # what did arrive, never passed off as complete
    async with client_for(gateway) as client, client.responses.stream(model="midstream-error", input="hi") as helper:
        seen = [event.type async for event in helper]
        with pytest.raises(RuntimeError, match=r"response\.completed"):  # the helper has no final response to give
            await helper.get_final_response()
    assert seen[-2:] == ["error", "response.failed"]


@pytest.mark.parametrize(("extra", "param", "problem"), [
    ({"temperature": 3}, "temperature", "must be between 0 and 2"),
    ({"input": []}, "input", "must not be empty"),
    ({"input": 5}, "input", "expected a string or a list of input items"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "must be one of user, assistant"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "file:///etc/passwd"}]}]},
     "input[0].content[0]", "must be a data:image/...;base64,... URL or an http(s) URL"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
     "input[0].content[0].type", "content parts 'input_file' are not supported"),
    ({"input": [{"role": "user", "content": "x"}, {"type": "function_call_output", "call_id": "c", "output": "1"}]},
     "input[1].call_id", "answers no earlier function_call"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]},
     "input[0].arguments", "expected the arguments as a JSON object in a string"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "items cannot be referenced"),
    ({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[0].type", "'reasoning' are not supported"),
    ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name", "expected a name of 1 to 64"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "must be one of function"),
    ({"tool_choice": "required"}, "tool_choice", '"required" needs tools'),
    ({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}}, "tool_choice",
     "names the function 'g', which is not among the tools"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "array"}}}}, "text.format",
     'json_schema needs a "name" and a "schema" that is a JSON schema object'),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "must be one of none, minimal, low, medium, high"),
    ({"reasoning": {"summary": "auto"}}, "reasoning.summary", "is not supported by this gateway"),
    ({"previous_response_id": "resp_1"}, "previous_response_id", "answers are not stored"),
    ({"store": True}, "store", "answers are not stored"),
    ({"max_output_tokens": 0}, "max_output_tokens", "must be at least 1"),
    ({"extra_body": {"temprature": 1}}, None, "unknown field(s): temprature"),
])
async def test_bad_response_input_is_refused_by_name_before_any_upstream_call(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, extra: dict, param: str | None,
    problem: str,
) -> None:
    async with client_for(gateway) as client:
        with pytest.raises(BadRequestError) as refused:
            await client.responses.create(**{"model": "gemma3:1b", "input": "x", **extra})
    assert refused.value.param == param
    assert refused.value.code == "invalid_input" and problem in refused.value.message
    assert ollama.recorder.requests == [] and openai.recorder.requests == []
