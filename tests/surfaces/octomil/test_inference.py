"""POST /api/v1/inference: answers, parameter mapping, fallback and failure statuses."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream

URL_ = "/api/v1/inference"


async def test_ollama_answers_with_output_usage_and_provider(gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "input_data": "What is 2+2?"})
    assert response.status == 200
    body = await response.json()
    assert body["output"] == "2 + 2 = 4\n"
    assert body["provider"] == "ollama"
    assert body["model_id"] == "gemma3:1b"
    assert body["usage"] == {"prompt_tokens": 128, "completion_tokens": 9, "total_tokens": 137}
    assert body["finish_reason"] == "stop"
    assert isinstance(body["latency_ms"], float | int) and body["latency_ms"] >= 0
    assert response.headers["Server-Timing"].startswith("total;dur=")
    sent = ollama.recorder.requests[-1]
    assert sent.path == "/api/chat"
    assert sent.json == {
        "model": "gemma3:1b", "messages": [{"role": "user", "content": "What is 2+2?"}], "stream": True,
    }


async def test_parameters_are_mapped_to_ollama_options(gateway: TestClient, ollama: RunningUpstream) -> None:
    parameters = {"temperature": 0.2, "max_tokens": 20, "top_p": 0.9, "top_k": 40, "stop": "\n\n", "seed": 7}
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    response = await gateway.post(URL_, json={"model_id": "length-test", "messages": messages,
                                              "parameters": parameters})
    assert response.status == 200
    # The replay answers a model named length-* with a real streamed capture that hit num_predict.
    body = await response.json()
    assert body["finish_reason"] == "length"
    assert ollama.recorder.bodies("/api/chat")[-1] == {
        "model": "length-test",
        "messages": messages,
        "stream": True,
        "options": {"temperature": 0.2, "num_predict": 20, "top_p": 0.9, "top_k": 40, "stop": ["\n\n"], "seed": 7},
    }


async def test_parameters_are_mapped_to_openai_fields(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    parameters = {"temperature": 0.2, "max_tokens": 20, "top_p": 0.9, "stop": ["END"], "seed": 7}
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "input_data": "hi", "parameters": parameters})
    assert response.status == 200
    assert openai.recorder.requests[-1].json == {
        "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2, "max_tokens": 20, "top_p": 0.9, "stop": ["END"], "seed": 7,
    }


async def test_unreachable_ollama_falls_back_to_openai(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})
    assert response.status == 200
    body = await response.json()
    assert body["provider"] == "openai"
    assert body["output"] == "Hello from the fallback."
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


async def test_ollama_queue_full_falls_back(gateway: TestClient, openai: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "busy-model", "input_data": "hi"})
    # Ollama answers 503 "server busy"; the OpenAI test server then answers 429 for "busy*".
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "upstream_unavailable"
    assert [a["backend"] for a in body["attempts"]] == ["ollama", "openai"]
    assert "server busy" in body["attempts"][0]["message"]
    assert "Rate limit" in body["attempts"][1]["message"]
    assert response.headers["X-Request-ID"] == body["request_id"]


async def test_model_missing_in_ollama_is_served_by_openai(gateway: TestClient, openai: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "missing-locally", "input_data": "hi"})
    assert response.status == 200
    body = await response.json()
    assert body["provider"] == "openai"
    assert openai.recorder.requests[-1].json["model"] == "missing-locally"


async def test_model_missing_everywhere_is_404_not_503(gateway: TestClient) -> None:
    response = await gateway.post(URL_, json={"model_id": "missing-everywhere", "input_data": "hi"})
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "model_not_found"
    assert [a["code"] for a in body["attempts"]] == ["model_not_found", "model_not_found"]
    assert "missing-everywhere" in body["message"]


async def test_missing_model_then_unreachable_fallback_is_503(
    make_gateway: GatewayFactory, ollama: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=dead_url / "v1")
    response = await gateway.post(URL_, json={"model_id": "missing-model", "input_data": "hi"})
    assert response.status == 503
    body = await response.json()
    assert [a["code"] for a in body["attempts"]] == ["model_not_found", "upstream_unavailable"]


async def test_client_error_from_upstream_is_returned_not_retried(
    gateway: TestClient, openai: RunningUpstream,
) -> None:
    response = await gateway.post(URL_, json={"model_id": "context-overflow", "input_data": "long " * 100})
    assert response.status == 413
    body = await response.json()
    assert body["code"] == "context_too_large"
    assert body["message"] == "the input length exceeds the context length"
    assert openai.recorder.requests == []


async def test_no_backend_reachable_is_503_naming_each(make_gateway: GatewayFactory, dead_url: URL) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=dead_url / "v1")
    response = await gateway.post(URL_, json={"model_id": "m", "input_data": "hi"})
    assert response.status == 503
    body = await response.json()
    assert body["retryable"] is True
    assert [a["backend"] for a in body["attempts"]] == ["ollama", "openai"]
    assert all("cannot connect" in a["message"] for a in body["attempts"])


async def test_upstream_that_answers_non_json_is_502(make_gateway: GatewayFactory, openai: RunningUpstream) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "bad-json", "input_data": "hi"})
    assert response.status == 502
    assert (await response.json())["code"] == "bad_upstream_response"


async def test_openai_key_is_sent_and_a_refused_key_is_not_the_clients_fault(
    make_gateway: GatewayFactory, openai_fake, openai: RunningUpstream,
) -> None:
    openai_fake.api_key = "sk-right"
    good = await make_gateway(openai_endpoint=openai.url, openai_api_key="sk-right")
    assert (await good.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})).status == 200
    assert openai.recorder.requests[-1].headers["Authorization"] == "Bearer sk-right"

    wrong = await make_gateway(openai_endpoint=openai.url, openai_api_key="sk-wrong")
    response = await wrong.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})
    assert response.status == 503
    body = await response.json()
    assert "refused the gateway's key" in body["message"]
    assert "sk-wrong" not in await response.text()
