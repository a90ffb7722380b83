"""The OpenAI-compatible surface (/v1), driven by the official `openai` package unchanged.

The gateway in front of the replayed Ollama traffic and the OpenAI wire-format test
server, as in every other test: the client cannot tell it is not talking to OpenAI,
except that the answers come from whichever backend served them.
"""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient
from openai import APIError, AsyncOpenAI, AuthenticationError, BadRequestError, NotFoundError

from tests.support.app import AUTH, TOKEN, GatewayFactory, RunningUpstream
from tests.support.upstreams.openai import TOKENS


def client_for(gateway: TestClient, token: str = TOKEN) -> AsyncOpenAI:
    # No retries: every answer the test sees is the gateway's first.
    return AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=token, max_retries=0)


async def test_single_shot_through_the_official_client(gateway: TestClient, ollama: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(
            model="gemma3:1b", messages=[{"role": "user", "content": "What is 2+2?"}])
        assert completion.object == "chat.completion"
        assert completion.model == "gemma3:1b"
        assert completion.choices[0].message.role == "assistant"
        assert completion.choices[0].message.content == "2 + 2 = 4\n"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.total_tokens == 137
        # Recorded from a real Ollama that hit num_predict (50) mid-sentence: "length".
        limited = await client.chat.completions.create(
            model="length-test", messages=[{"role": "user", "content": "Hello, how are you?"}], temperature=0.2,
            max_tokens=20)
        assert limited.choices[0].message.content.startswith("Hello there! I’m doing well")  # type: ignore[union-attr]
        assert limited.choices[0].finish_reason == "length"
        assert limited.usage is not None and (limited.usage.prompt_tokens, limited.usage.completion_tokens) == (15, 50)
        sent = ollama.recorder.bodies("/api/chat")[-1]
        assert sent["options"]["temperature"] == 0.2 and sent["options"]["num_predict"] == 20


async def test_stream_through_the_official_client_with_usage(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        stream = await client.chat.completions.create(
            model="gemma3:1b", messages=[{"role": "user", "content": "What is 2+2?"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "2 + 2 = 4\n"
        assert chunks[0].choices[0].delta.role == "assistant"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 9
        assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


async def test_stream_falls_back_to_the_openai_upstream(gateway: TestClient, openai: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        stream = await client.chat.completions.create(
            model="missing-locally", messages=[{"role": "user", "content": "hi"}], stream=True)
        deltas = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        assert deltas == TOKENS  # one event per upstream token, in order
        assert openai.recorder.bodies("/v1/chat/completions")[-1]["model"] == "missing-locally"


async def test_stream_framing_ends_with_done_and_carries_no_usage_unless_asked(gateway: TestClient) -> None:
    response = await gateway.post("/v1/chat/completions", json={
        "model": "gemma3:1b", "messages": [{"role": "user", "content": "What is 2+2?"}], "stream": True})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    raw = await response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    blocks = [b for b in raw.split(b"\n\n") if b and not b.startswith(b":")]
    assert all(b.startswith(b"data: ") and b"\n" not in b for b in blocks)
    chunks = [json.loads(b[6:]) for b in blocks[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)


async def test_an_upstream_failing_mid_stream_raises_in_the_client_instead_of_a_short_answer(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    async with client_for(gateway) as client:
        stream = await client.chat.completions.create(
            model="midstream-error", messages=[{"role": "user", "content": "hi"}], stream=True)
        received: list[str | None] = []

        async def read_all() -> None:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content)

        with pytest.raises(APIError) as raised:
            await read_all()
        assert received[1:] == TOKENS[:2]  # what came before the failure, then the error
        assert raised.value.code == "upstream_unavailable"  # the upstream's own error event, translated


async def test_errors_come_in_openai_shape_and_map_to_the_clients_exceptions(gateway: TestClient) -> None:
    async with client_for(gateway, token="wrong") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.chat.completions.create(model="gemma3:1b", messages=[{"role": "user", "content": "hi"}])
    async with client_for(gateway) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.chat.completions.create(
                model="missing-everywhere", messages=[{"role": "user", "content": "x"}])
        assert missing.value.code == "model_not_found"
        body = missing.value.body
        assert isinstance(body, dict) and [a["backend"] for a in body["attempts"]] == ["ollama", "openai"]
        with pytest.raises(BadRequestError) as refused:
            await client.chat.completions.create(
                model="gemma3:1b", messages=[{"role": "user", "content": "x"}], temperature=3)
        assert "must be between 0 and 2 @ $.temperature" in refused.value.message
        assert refused.value.param == "temperature"  # the field to fix, as OpenAI names it
        with pytest.raises(BadRequestError) as refused:
            await client.chat.completions.create(model="gemma3:1b", messages=[{"role": "robot", "content": "x"}])
        assert refused.value.param == "messages[0].role"
        with pytest.raises(BadRequestError) as refused:  # no one field to blame
            await client.chat.completions.create(
                model="gemma3:1b", messages=[{"role": "user", "content": "x"}], extra_body={"temprature": 1})
        assert refused.value.param is None


@pytest.mark.parametrize(("extra", "problem"), [
    ({"n": 2}, "only n=1 is supported @ $.n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "is not supported by this gateway @ $.tools"),
    ({"presence_penalty": 0.5}, "is not supported by this gateway @ $.presence_penalty"),
    ({"response_format": {"type": "json_object"}}, 'only {"type": "text"} is supported @ $.response_format'),
    ({"logprobs": True}, "is not supported by this gateway @ $.logprobs"),
    ({"temprature": 1}, "unknown field(s): temprature @ $"),
    ({"messages": []}, "must not be empty @ $.messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "content parts of type 'image_url' are not supported; only text @ $.messages[0].content"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "must be one of system, developer, user, assistant, tool"),
    ({"messages": [{"role": "user"}]}, "required field missing @ $.messages[0].content"),
    ({"stream": "yes"}, "expected true or false @ $.stream"),
])
async def test_what_cannot_be_honoured_is_refused_by_name_before_any_upstream_call(
    gateway: TestClient, ollama: RunningUpstream, extra: dict, problem: str,
) -> None:
    body = {"model": "gemma3:1b", "messages": [{"role": "user", "content": "x"}], **extra}
    response = await gateway.post("/v1/chat/completions", json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_input"
    assert problem in error["message"]
    assert ollama.recorder.bodies("/api/chat") == []


async def test_text_parts_and_the_developer_role_are_mapped_for_the_upstream(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        await client.chat.completions.create(model="gemma3:1b", messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "2+2?"}]},
        ], max_completion_tokens=7, user="someone", n=1)
        sent = ollama.recorder.bodies("/api/chat")[-1]
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is\n2+2?"}]
        assert sent["options"]["num_predict"] == 7
        assert "someone" not in json.dumps(sent)


async def test_embeddings_through_the_official_client_match_the_native_endpoint(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        texts = ["Hello world", "Goodbye"]
        by_client = await client.embeddings.create(model="nomic-embed-text", input=texts)  # base64 on the wire
        as_floats = await client.embeddings.create(model="nomic-embed-text", input=texts, encoding_format="float")
        native_response = await gateway.post(
            "/api/v1/embeddings", json={"model_id": "nomic-embed-text", "input": texts})
        native = await native_response.json()
        assert [d.index for d in by_client.data] == [0, 1]
        for decoded, floats, expected in zip(by_client.data, as_floats.data, native["embeddings"], strict=True):
            assert floats.embedding == expected
            assert decoded.embedding == pytest.approx(expected, rel=1e-6, abs=1e-7)  # float32 on the wire
        assert by_client.usage.prompt_tokens == native["usage"]["prompt_tokens"]


async def test_embeddings_refuse_token_arrays_and_dimensions(gateway: TestClient) -> None:
    model = {"model": "nomic-embed-text"}
    for body, problem in [
        ({**model, "input": [[1, 2, 3]]}, "token arrays are not supported; send the text @ $.input"),
        ({**model, "input": "x", "dimensions": 8}, "is not supported by this gateway @ $.dimensions"),
        ({**model, "input": "x", "encoding_format": "hex"}, "$.encoding_format"),
    ]:
        response = await gateway.post("/v1/embeddings", json=body)
        assert response.status == 400, body
        assert problem in (await response.json())["error"]["message"]


async def test_models_lists_what_the_backends_report(make_gateway: GatewayFactory, openai: RunningUpstream) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    async with client_for(gateway) as client:
        listed = [m.id async for m in client.models.list()]
        assert listed == ["gpt-test"]
        model = await client.models.retrieve("gpt-test")
        assert model.owned_by == "openai"
        with pytest.raises(NotFoundError):
            await client.models.retrieve("nope/not-here")


async def test_v1_needs_the_token_like_api_v1(gateway: TestClient) -> None:
    for method, path in [("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/models")]:
        response = await gateway.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401
        assert (await response.json())["error"]["type"] == "authentication_error"
    response = await gateway.get("/v1/models", headers=AUTH)
    assert response.status == 200
