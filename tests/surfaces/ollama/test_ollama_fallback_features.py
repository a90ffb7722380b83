"""Tools, `format`, images and `think` on the Ollama API, served by the fallback: the official
`ollama` client and LangChain's ChatOllama, unchanged, against the gateway, with Ollama
unreachable and the OpenAI test server answering. What reaches it is what chat completions
expects (the recorded upstream request); what comes back is in Ollama's shapes (a tool
call's arguments an object, each call whole in one stream line, thinking apart)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import ollama
import orjson
import pytest
from aiohttp.test_utils import TestClient
from langchain_core.messages import ToolMessage
from langchain_ollama import ChatOllama
from yarl import URL

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.upstreams.scripted import Answer, ScriptedUpstream

WEATHER = {"type": "function", "function": {
    "name": "weather", "description": "Today's weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "degrees": {"type": "integer"}}}
# The first bytes of a PNG and of a JPEG file: what the gateway reads the media type from.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL) -> TestClient:
    return await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)


@pytest.fixture
async def client(gateway: TestClient) -> AsyncIterator[ollama.AsyncClient]:
    client = ollama.AsyncClient(host=str(gateway.make_url("")), headers=AUTH)
    yield client
    await client.close()


def sent(openai: RunningUpstream) -> dict[str, Any]:
    [*_, last] = openai.recorder.bodies("/v1/chat/completions")
    return last


async def chat(client: ollama.AsyncClient, stream: bool, **kwargs: Any) -> tuple[ollama.ChatResponse, list]:
    """The answer, single or rebuilt from the stream's parts as a client would, and the parts."""
    if not stream:
        return await client.chat(**kwargs), []
    parts = [part async for part in await client.chat(stream=True, **kwargs)]
    assert [part.done for part in parts] == [False] * (len(parts) - 1) + [True]
    calls = [call for part in parts for call in part.message.tool_calls or []]
    message = ollama.Message(role="assistant", content="".join(p.message.content or "" for p in parts),
                             thinking="".join(p.message.thinking or "" for p in parts) or None,
                             tool_calls=calls or None)
    return ollama.ChatResponse(**{**parts[-1].model_dump(), "message": message}), parts


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
async def test_a_tool_call_round_trip(client: ollama.AsyncClient, openai: RunningUpstream, stream: bool) -> None:
    question = {"role": "user", "content": "Weather in Paris?"}
    answer, parts = await chat(client, stream, model="gpt-test", messages=[question], tools=[WEATHER])
    assert answer.message.tool_calls is not None
    assert [(c.function.name, c.function.arguments) for c in answer.message.tool_calls] == [
        ("weather", {"city": "Paris"})]  # an object, as Ollama sends it
    assert answer.done_reason == "stop" and (answer.prompt_eval_count, answer.eval_count) == (31, 12)
    if stream:  # the call streamed in pieces upstream, whole in one line here, as Ollama does
        assert [bool(part.message.tool_calls) for part in parts] == [True, False]
    asked = sent(openai)
    assert asked["tools"] == [WEATHER] and asked["stream"] is True

    result = {"role": "tool", "content": "22 degrees", "tool_name": "weather"}
    final, _ = await chat(client, stream, model="gpt-test", tools=[WEATHER],
                          messages=[question, answer.message, result])
    assert final.message.content == "The tool said: 22 degrees" and not final.message.tool_calls
    # Chat completions' own shape: the call with an id and its arguments as JSON text, the
    # result tied to it by that id.
    call, answered = sent(openai)["messages"][1:]
    [made] = call["tool_calls"]
    assert call == {"role": "assistant", "content": None, "tool_calls": [{
        "id": made["id"], "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]}
    assert answered == {"role": "tool", "content": "22 degrees", "tool_call_id": made["id"]}


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
async def test_format_with_a_json_schema_is_structured_output(
    client: ollama.AsyncClient, openai: RunningUpstream, stream: bool,
) -> None:
    answer, _ = await chat(client, stream, model="gpt-test", format=SCHEMA,
                           messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert orjson.loads(answer.message.content or "") == {"city": "Paris", "degrees": 22}
    assert sent(openai)["response_format"] == {"type": "json_schema",
                                               "json_schema": {"name": "output", "schema": SCHEMA}}


async def test_format_json_on_generate_is_json_mode(client: ollama.AsyncClient, openai: RunningUpstream) -> None:
    answer = await client.generate(model="gpt-test", prompt="2+2 as JSON", format="json")
    assert orjson.loads(answer.response) == {"answer": 4}
    assert sent(openai)["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
async def test_images_become_data_urls_of_the_type_their_bytes_show(
    client: ollama.AsyncClient, openai: RunningUpstream, stream: bool,
) -> None:
    answer, _ = await chat(client, stream, model="gpt-test", messages=[
        {"role": "user", "content": "What is this?", "images": [PNG, JPEG]}])
    assert answer.message.content == f"I see 2 image(s) of {len(PNG)}, {len(JPEG)} bytes."
    [message] = sent(openai)["messages"]
    assert message == {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}}]}


async def test_an_image_on_generate_goes_with_the_prompt(client: ollama.AsyncClient, openai: RunningUpstream) -> None:
    answer = await client.generate(model="gpt-test", prompt="What is this?", images=[JPEG], system="Be brief.")
    assert answer.response == f"I see 1 image(s) of {len(JPEG)} bytes."
    assert sent(openai)["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}}]}]


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
@pytest.mark.parametrize(("think", "effort"), [(True, "medium"), ("high", "high")])
async def test_think_asks_for_reasoning_and_returns_it_as_thinking(
    client: ollama.AsyncClient, openai: RunningUpstream, stream: bool, think: bool | str, effort: str,
) -> None:
    answer, parts = await chat(client, stream, model="reasoner-1", think=think,
                               messages=[{"role": "user", "content": "2+2?"}])
    assert answer.message.thinking == "Two and two make four."
    assert answer.message.content == "Hello from the fallback."
    if stream:  # thinking first, in lines of its own, as Ollama streams it
        assert [part.message.thinking for part in parts[:3]] == ["Two ", "and two ", "make four."]
    assert sent(openai)["reasoning_effort"] == effort


async def test_think_false_asks_for_no_reasoning_and_shows_none(
    client: ollama.AsyncClient, openai: RunningUpstream,
) -> None:
    answer = await client.chat(model="reasoner-1", think=False, messages=[{"role": "user", "content": "2+2?"}])
    assert answer.message.thinking is None and answer.message.content == "Hello from the fallback."
    assert "reasoning_effort" not in sent(openai)
    generated = await client.generate(model="reasoner-1", prompt="2+2?", think="low")
    assert generated.thinking == "Two and two make four." and sent(openai)["reasoning_effort"] == "low"


# --- LangChain's ChatOllama ------------------------------------------------------------


@pytest.fixture
async def chat_ollama(gateway: TestClient) -> AsyncIterator[Any]:
    made: list[ChatOllama] = []

    def make(**kwargs: Any) -> ChatOllama:
        made.append(ChatOllama(base_url=str(gateway.make_url("")), client_kwargs={"headers": AUTH}, **kwargs))
        return made[-1]

    yield make
    for model in made:  # LangChain never closes the clients it makes
        await model._async_client.close()
        model._client.close()


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
async def test_chat_ollama_bound_tools_round_trip(chat_ollama: Any, openai: RunningUpstream, stream: bool) -> None:
    model = chat_ollama(model="gpt-test").bind_tools([WEATHER])
    question = ("user", "Weather in Paris?")
    if stream:
        chunks = [chunk async for chunk in model.astream([question])]
        called = chunks[0]
        for chunk in chunks[1:]:
            called += chunk
    else:
        called = await model.ainvoke([question])
    [call] = called.tool_calls
    assert (call["name"], call["args"]) == ("weather", {"city": "Paris"})
    answered = await model.ainvoke([question, called, ToolMessage("22 degrees", tool_call_id=call["id"])])
    assert answered.content == "The tool said: 22 degrees"
    # The `ollama` client under ChatOllama drops LangChain's ids: the result is tied to the call by name.
    asked, answer = sent(openai)["messages"][1:3]
    assert (answer["role"], answer["tool_call_id"]) == ("tool", asked["tool_calls"][0]["id"])


async def test_chat_ollama_structured_output_and_reasoning(chat_ollama: Any, openai: RunningUpstream) -> None:
    structured = chat_ollama(model="gpt-test").with_structured_output(SCHEMA, method="json_schema")
    assert await structured.ainvoke("Weather in Paris?") == {"city": "Paris", "degrees": 22}
    assert sent(openai)["response_format"]["json_schema"]["schema"] == SCHEMA
    thought = await chat_ollama(model="reasoner-1", reasoning=True).ainvoke("2+2?")
    assert thought.additional_kwargs["reasoning_content"] == "Two and two make four."
    assert thought.content == "Hello from the fallback." and sent(openai)["reasoning_effort"] == "medium"


# --- what a broken upstream sends ------------------------------------------------------


def sse_call(arguments: str) -> list[bytes]:
    """A chat-completions stream whose one tool call has `arguments` as its text."""
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": arguments}}
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
async def test_tool_call_arguments_that_are_not_an_object_end_the_answer_with_an_error(
    make_gateway: GatewayFactory, aiohttp_server: Any, dead_url: URL, stream: bool,
) -> None:
    scripted = ScriptedUpstream()
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse_call('["Paris"'))
    server = await aiohttp_server(scripted.app())
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=server.make_url("/v1"))
    response = await gateway.post("/api/chat", json={"model": "gpt-test", "tools": [WEATHER], "stream": stream,
                                                      "messages": [{"role": "user", "content": "Paris?"}]})
    lines = [orjson.loads(line) for line in (await response.read()).splitlines()]
    # Never a call with made-up arguments: a 502 before the answer starts, or its last line.
    assert response.status == (200 if stream else 502)
    assert lines[-1] == {"error": "the arguments of a call of 'weather' are not a JSON object"}
    assert not any(line.get("done") for line in lines)


async def test_a_tool_result_answers_the_call_its_tool_call_id_names(gateway: TestClient,
                                                                    openai: RunningUpstream) -> None:
    """LangChain and the AI SDK's Ollama providers send the id of the call a result answers
    (Ollama ignores it); two calls of one tool answered out of order stay tied to theirs."""
    calls = [{"id": "call-paris", "function": {"name": "weather", "arguments": {"city": "Paris"}}},
             {"id": "call-oslo", "function": {"name": "weather", "arguments": {"city": "Oslo"}}}]
    response = await gateway.post("/api/chat", headers=AUTH, json={
        "model": "gpt-test", "stream": False, "tools": [WEATHER], "messages": [
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "content": "-3 degrees", "tool_name": "weather", "tool_call_id": "call-oslo"},
            {"role": "tool", "content": "22 degrees", "tool_name": "weather", "tool_call_id": "call-paris"}]})
    assert response.status == 200, await response.text()
    *_, oslo, paris = sent(openai)["messages"]
    assert (oslo["tool_call_id"], oslo["content"]) == ("call-oslo", "-3 degrees")
    assert (paris["tool_call_id"], paris["content"]) == ("call-paris", "22 degrees")
    assert [c["id"] for c in sent(openai)["messages"][1]["tool_calls"]] == ["call-paris", "call-oslo"]
