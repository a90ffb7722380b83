"""POST /api/v1/inference/batch: answers in input order, per-item errors, shared parameters, bounded concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from attrs import define

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.upstreams.openai import OpenAIUpstream

URL_ = "/api/v1/inference/batch"

OLLAMA_ANSWER = "2 + 2 = 4\n"  # the replayed non-streaming gemma3 answer
OPENAI_ANSWER = "Hello from the fallback."


@define
class OverlappingOpenAI(OpenAIUpstream):
    """The OpenAI test server, with `token_delay` also holding back non-streaming answers.

    A batch makes non-streaming calls, which the plain test server answers at once, so two
    calls would hardly ever be in flight together; held back, the calls a batch allows to
    overlap do, and the recorder's `max_in_flight` shows the real bound.
    """

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        return await super().chat(request)


@pytest.fixture
def openai_fake() -> OpenAIUpstream:
    return OverlappingOpenAI()


def item_errors(result: dict[str, Any]) -> list[str]:
    return list(result["error"]["errors"])


async def test_results_come_back_in_input_order_for_messages_and_input_data(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    inputs = [
        {"input_data": "first"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "second"}]},
        {"input_data": "third"},
    ]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert body["model_id"] == "gemma3:1b"
    assert body["succeeded"] == 3 and body["failed"] == 0
    assert isinstance(body["latency_ms"], float | int) and body["latency_ms"] >= 0
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    for result in body["results"]:
        assert result["status"] == 200
        assert result["output"] == OLLAMA_ANSWER
        assert result["provider"] == "ollama"
        assert result["model_id"] == "gemma3:1b"
        assert result["usage"] == {"prompt_tokens": 128, "completion_tokens": 9, "total_tokens": 137}
        assert isinstance(result["latency_ms"], float | int) and result["latency_ms"] >= 0
        assert "error" not in result
    sent = sorted((r.json["messages"] for r in ollama.recorder.requests), key=lambda m: m[-1]["content"])
    assert sent == [
        [{"role": "user", "content": "first"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "second"}],
        [{"role": "user", "content": "third"}],
    ]


async def test_empty_messages_item_gets_its_own_400_while_others_succeed(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    inputs = [{"input_data": "a"}, {"messages": []}, {"input_data": "c"}]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert body["succeeded"] == 2 and body["failed"] == 1
    ok_first, bad, ok_last = body["results"]
    assert ok_first["status"] == ok_last["status"] == 200
    assert ok_first["output"] == ok_last["output"] == OLLAMA_ANSWER
    assert bad["index"] == 1 and bad["status"] == 400
    assert bad["error"]["code"] == "invalid_input"
    assert bad["error"]["retryable"] is False
    assert item_errors(bad) == ["must not be empty @ $.inputs[1].messages"]
    assert "output" not in bad
    assert len(ollama.recorder.requests) == 2  # the bad item never reached a backend


async def test_unknown_parameter_in_one_item_is_that_items_error_naming_its_path(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    inputs = [{"input_data": "a"}, {"input_data": "b", "parameters": {"max_tokens": 5, "temprature": 0.3}}]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert body["succeeded"] == 1 and body["failed"] == 1
    assert body["results"][0]["output"] == OLLAMA_ANSWER
    bad = body["results"][1]
    assert bad["status"] == 400 and bad["error"]["code"] == "invalid_input"
    assert item_errors(bad) == ["unknown field(s): temprature @ $.inputs[1].parameters"]
    assert "temprature" in bad["error"]["message"]
    assert len(ollama.recorder.requests) == 1


async def test_item_with_both_or_neither_prompt_form_is_its_own_error(gateway: TestClient) -> None:
    inputs = [
        {"input_data": "a", "messages": [{"role": "user", "content": "a"}]},
        {"input_data": "b"},
        {},
        {"input_data": "d", "prompt": "x"},
    ]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert [r["status"] for r in body["results"]] == [400, 200, 400, 400]
    assert body["succeeded"] == 1 and body["failed"] == 3
    assert item_errors(body["results"][0]) == ["exactly one of messages and input_data is required @ $.inputs[0]"]
    assert item_errors(body["results"][2]) == ["exactly one of messages and input_data is required @ $.inputs[2]"]
    assert item_errors(body["results"][3]) == ["unknown field(s): prompt @ $.inputs[3]"]


async def test_non_object_item_is_its_own_error_not_the_batchs(gateway: TestClient, ollama: RunningUpstream) -> None:
    inputs = [{"input_data": "a"}, 5, {"input_data": "c"}]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert [r["status"] for r in body["results"]] == [200, 400, 200]
    assert item_errors(body["results"][1]) == ["expected an object @ $.inputs[1]"]
    assert len(ollama.recorder.requests) == 2


async def test_model_missing_everywhere_fails_every_item_with_404_but_the_batch_is_200(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    inputs = [{"input_data": "a"}, {"messages": [{"role": "user", "content": "b"}]}]
    response = await gateway.post(URL_, json={"model_id": "missing-everywhere", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert body["succeeded"] == 0 and body["failed"] == 2
    for index, result in enumerate(body["results"]):
        assert result["index"] == index
        assert result["status"] == 404
        assert result["error"]["code"] == "model_not_found"
        assert result["error"]["retryable"] is False
        assert [a["backend"] for a in result["error"]["attempts"]] == ["ollama", "openai"]
        assert "missing-everywhere" in result["error"]["message"]
    assert len(ollama.recorder.requests) == len(openai.recorder.requests) == 2


async def test_upstream_failure_and_invalid_item_are_reported_side_by_side(
    gateway: TestClient, openai: RunningUpstream,
) -> None:
    # Ollama queue full, then the OpenAI test server's 429 for "busy*": every valid item is a 503.
    inputs = [{"input_data": "a"}, {"messages": []}]
    response = await gateway.post(URL_, json={"model_id": "busy-model", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    upstream_failed, invalid = body["results"]
    assert upstream_failed["status"] == 503
    assert upstream_failed["error"]["code"] == "upstream_unavailable"
    assert upstream_failed["error"]["retryable"] is True
    assert invalid["status"] == 400 and invalid["error"]["code"] == "invalid_input"
    assert body["failed"] == 2 and body["succeeded"] == 0


async def test_batch_parameters_apply_to_every_item_and_item_parameters_override_them(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    inputs = [
        {"input_data": "inherits"},
        {"input_data": "overrides", "parameters": {"max_tokens": 50, "stop": ["END"]}},
    ]
    parameters = {"max_tokens": 5, "temperature": 0.1, "seed": 7}
    response = await gateway.post(URL_, json={"model_id": "length-test", "inputs": inputs, "parameters": parameters})
    assert response.status == 200
    body = await response.json()
    assert body["succeeded"] == 2
    # The replay answers a model named length-* with a real streamed capture that hit num_predict.
    assert [r["finish_reason"] for r in body["results"]] == ["length", "length"]
    options = {sent["messages"][0]["content"]: sent["options"] for sent in ollama.recorder.bodies("/api/chat")}
    assert options == {
        "inherits": {"temperature": 0.1, "num_predict": 5, "seed": 7},
        "overrides": {"temperature": 0.1, "num_predict": 50, "stop": ["END"], "seed": 7},
    }


async def test_invalid_batch_parameters_are_a_400_for_the_whole_batch(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    body = {"model_id": "gemma3:1b", "inputs": [{"input_data": "a"}], "parameters": {"max_tokens": "5"}}
    response = await gateway.post(URL_, json=body)
    assert response.status == 400
    error = await response.json()
    assert error["errors"] == ["expected an integer @ $.parameters.max_tokens"]
    assert ollama.recorder.requests == []


async def test_at_most_max_concurrency_calls_are_in_flight(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.token_delay = 0.05
    gateway = await make_gateway(openai_endpoint=openai.url)
    inputs = [{"input_data": f"prompt {i}"} for i in range(12)]
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "inputs": inputs, "max_concurrency": 3})
    assert response.status == 200
    body = await response.json()
    assert body["max_concurrency"] == 3
    assert body["succeeded"] == 12
    assert all(r["output"] == OPENAI_ANSWER and r["provider"] == "openai" for r in body["results"])
    assert len(openai.recorder.requests) == 12
    assert openai.recorder.max_in_flight == 3
    # Each item is sent once, and its answer is reported at its own index.
    assert sorted(r.json["messages"][0]["content"] for r in openai.recorder.requests) == sorted(
        i["input_data"] for i in inputs
    )
    assert [r["index"] for r in body["results"]] == list(range(12))


async def test_results_keep_input_order_when_items_finish_out_of_order(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    # Invalid items are answered at once, valid ones only after the upstream's delay.
    openai_fake.token_delay = 0.05
    gateway = await make_gateway(openai_endpoint=openai.url)
    inputs = [{"input_data": f"prompt {i}"} if i % 2 == 0 else {"messages": []} for i in range(8)]
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "inputs": inputs, "max_concurrency": 4})
    assert response.status == 200
    body = await response.json()
    assert [r["index"] for r in body["results"]] == list(range(8))
    assert [r["status"] for r in body["results"]] == [200, 400] * 4
    for i, result in enumerate(body["results"]):
        if i % 2:
            assert item_errors(result) == [f"must not be empty @ $.inputs[{i}].messages"]
        else:
            assert result["output"] == OPENAI_ANSWER
            assert result["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert body["succeeded"] == 4 and body["failed"] == 4
    assert len(openai.recorder.requests) == 4


async def test_requested_concurrency_above_the_cap_is_clamped(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.token_delay = 0.05
    gateway = await make_gateway(openai_endpoint=openai.url, batch_max_concurrency=2, batch_default_concurrency=1)
    inputs = [{"input_data": f"prompt {i}"} for i in range(6)]
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "inputs": inputs, "max_concurrency": 10})
    assert response.status == 200
    body = await response.json()
    assert body["max_concurrency"] == 2
    assert body["succeeded"] == 6
    assert openai.recorder.max_in_flight == 2


async def test_default_concurrency_is_the_configured_one(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.token_delay = 0.05
    gateway = await make_gateway(openai_endpoint=openai.url, batch_default_concurrency=2, batch_max_concurrency=8)
    inputs = [{"input_data": f"prompt {i}"} for i in range(6)]
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "inputs": inputs})
    assert response.status == 200
    body = await response.json()
    assert body["max_concurrency"] == 2
    assert body["succeeded"] == 6
    assert openai.recorder.max_in_flight == 2


async def test_empty_inputs_is_400(gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": []})
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_input"
    assert body["errors"] == ["must not be empty @ $.inputs"]
    assert ollama.recorder.requests == []


async def test_more_inputs_than_allowed_is_400_and_nothing_is_sent(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, batch_max_inputs=3)
    inputs = [{"input_data": str(i)} for i in range(4)]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_input"
    assert body["errors"] == ["at most 3 inputs are accepted @ $.inputs"]
    assert ollama.recorder.requests == [] and openai.recorder.requests == []


async def test_exactly_the_allowed_number_of_inputs_is_accepted(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, batch_max_inputs=3)
    inputs = [{"input_data": str(i)} for i in range(3)]
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 200
    assert (await response.json())["succeeded"] == 3


@pytest.mark.parametrize("inputs", [{"input_data": "a"}, "a", None])
async def test_inputs_that_is_not_a_list_is_400(
    gateway: TestClient, ollama: RunningUpstream, inputs: object,
) -> None:
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": inputs})
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_input"
    assert any(e.endswith("@ $.inputs") for e in body["errors"])
    assert ollama.recorder.requests == []


@pytest.mark.parametrize(
    ("max_concurrency", "problem"),
    [(0, "must be at least 1"), (-2, "must be at least 1"), ("3", "expected an integer"),
     (2.5, "expected an integer"), (True, "expected an integer")],
)
async def test_invalid_max_concurrency_is_400(
    gateway: TestClient, ollama: RunningUpstream, max_concurrency: object, problem: str,
) -> None:
    body = {"model_id": "gemma3:1b", "inputs": [{"input_data": "a"}], "max_concurrency": max_concurrency}
    response = await gateway.post(URL_, json=body)
    assert response.status == 400
    assert (await response.json())["errors"] == [f"{problem} @ $.max_concurrency"]
    assert ollama.recorder.requests == []


async def test_missing_model_id_is_400(gateway: TestClient) -> None:
    response = await gateway.post(URL_, json={"inputs": [{"input_data": "a"}]})
    assert response.status == 400
    assert (await response.json())["errors"] == ["required field missing @ $.model_id"]


async def test_batch_requires_the_bearer_token(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={})
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "inputs": [{"input_data": "a"}]})
    assert response.status == 401
    assert (await response.json())["code"] == "unauthorized"
    assert ollama.recorder.requests == []
