"""Bad input is refused at the edge, over HTTP, before any upstream hears of it.

Every refusal is a JSON error with a stable `code`; a body that does not fit lists each
problem with its JSON path in `errors`. Both upstream test servers run behind the gateway
in every test, and their recorders prove that nothing was forwarded.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.support.app import AUTH, GatewayFactory, RunningUpstream

INFERENCE = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"
EMBEDDINGS = "/api/v1/embeddings"
PROMPT_ENDPOINTS = pytest.mark.parametrize("endpoint", [INFERENCE, STREAM])

GOOD = {"model_id": "gemma3:1b", "input_data": "What is 2+2?"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
def upstreams(ollama: RunningUpstream, openai: RunningUpstream) -> list[RunningUpstream]:
    return [ollama, openai]


@pytest.fixture
async def limited_gateway(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> TestClient:
    """Small limits, so that going over them takes a small request."""
    return await make_gateway(
        ollama_base_url=ollama.url, openai_endpoint=openai.url,
        max_body_bytes=1024, max_messages=2, embed_max_inputs=2,
    )


async def refusal(response: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """The JSON error body, after checking that it is one, with this status and code."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["code"] == code
    assert body["retryable"] is False
    assert body["message"]
    return body


def assert_one_problem_at(body: dict[str, Any], path: str, what: str) -> None:
    """`errors` names exactly one problem, at `path`, saying `what`; the message repeats it."""
    assert len(body["errors"]) == 1, body["errors"]
    problem = body["errors"][0]
    assert problem.endswith(f" @ {path}"), problem
    assert what in problem
    assert what in body["message"]


def assert_nothing_forwarded(upstreams: list[RunningUpstream]) -> None:
    for upstream in upstreams:
        assert upstream.recorder.requests == []


# --- the body as a whole -----------------------------------------------------------------


@PROMPT_ENDPOINTS
@pytest.mark.parametrize("raw", [b'{"model_id": "m",', b"{'model_id': 'm'}", b'{"model_id": "m"} trailing'])
async def test_body_that_is_not_json_is_refused(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, raw: bytes,
) -> None:
    response = await gateway.post(endpoint, data=raw, headers=JSON_HEADERS)
    body = await refusal(response, 400, "invalid_input")
    assert "not valid JSON" in body["message"]
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
@pytest.mark.parametrize("raw", [b"", b"  \n "], ids=["empty", "whitespace"])
async def test_empty_body_is_refused(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, raw: bytes,
) -> None:
    response = await gateway.post(endpoint, data=raw, headers=JSON_HEADERS)
    body = await refusal(response, 400, "invalid_input")
    assert "empty" in body["message"]
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
@pytest.mark.parametrize("document", [[GOOD], "text", None, 5], ids=["array", "string", "null", "number"])
async def test_json_that_is_not_an_object_is_refused(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, document: Any,
) -> None:
    response = await gateway.post(endpoint, data=orjson.dumps(document), headers=JSON_HEADERS)
    body = await refusal(response, 400, "invalid_input")
    assert body["errors"] == ["expected an object @ $"]
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_body_declared_as_another_media_type_is_refused_with_415(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, content_type: str,
) -> None:
    response = await gateway.post(endpoint, data=orjson.dumps(GOOD), headers={**AUTH, "Content-Type": content_type})
    body = await refusal(response, 415, "unsupported_media_type")
    assert content_type in body["message"]
    assert_nothing_forwarded(upstreams)


async def test_body_without_content_type_is_read_as_json(gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await gateway.post(INFERENCE, data=orjson.dumps(GOOD), skip_auto_headers=["Content-Type"])
    assert response.status == 200, await response.text()
    assert (await response.json())["output"] == "2 + 2 = 4\n"
    assert ollama.recorder.paths() == ["/api/chat"]


async def test_json_content_type_with_charset_is_accepted(gateway: TestClient, ollama: RunningUpstream) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    response = await gateway.post(INFERENCE, data=orjson.dumps(GOOD), headers=headers)
    assert response.status == 200, await response.text()
    assert ollama.recorder.paths() == ["/api/chat"]


# --- one field wrong ----------------------------------------------------------------------

USER = {"role": "user", "content": "hi"}

ONE_PROBLEM = [
    pytest.param({"input_data": "hi"}, "$.model_id", "required", id="model_id-missing"),
    pytest.param({"model_id": 5, "input_data": "hi"}, "$.model_id", "expected a string", id="model_id-number"),
    pytest.param({"model_id": ["m"], "input_data": "hi"}, "$.model_id", "expected a string", id="model_id-list"),
    pytest.param({"model_id": "", "input_data": "hi"}, "$.model_id", "must not be empty", id="model_id-empty"),
    pytest.param({"model_id": "  ", "input_data": "hi"}, "$.model_id", "must not be empty", id="model_id-blank"),
    pytest.param({"model_id": "m", "messages": [USER], "input_data": "hi"}, "$",
                 "exactly one of messages and input_data", id="messages-and-input_data"),
    pytest.param({"model_id": "m"}, "$", "exactly one of messages and input_data", id="no-prompt"),
    pytest.param({"model_id": "m", "messages": None, "input_data": None}, "$", "exactly one of messages and input_data",
                 id="both-null"),
    pytest.param({"model_id": "m", "messages": []}, "$.messages", "must not be empty", id="messages-empty"),
    pytest.param({"model_id": "m", "messages": "hi"}, "$.messages", "expected a list", id="messages-string"),
    pytest.param({"model_id": "m", "messages": USER}, "$.messages", "expected a list", id="messages-object"),
    pytest.param({"model_id": "m", "messages": ["hi"]}, "$.messages[0]", "expected an object", id="message-string"),
    pytest.param({"model_id": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "$.messages[0].role",
                 "system, user, assistant, tool", id="message-unknown-role"),
    pytest.param({"model_id": "m", "messages": [{"role": "user"}]}, "$.messages[0].content", "required",
                 id="message-no-content"),
    pytest.param({"model_id": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "$.messages[0]",
                 "unknown field(s): name", id="message-extra-field"),
    pytest.param({"model_id": "m", "messages": [USER, {"role": "user", "content": 5}]}, "$.messages[1].content",
                 "expected a string", id="second-message-content-number"),
    pytest.param({"model_id": "m", "input_data": 5}, "$.input_data", "expected a string", id="input_data-number"),
    pytest.param({"model_id": "m", "input_data": "hi", "prompt": "hi"}, "$", "unknown field(s): prompt",
                 id="unknown-top-level-field"),
    pytest.param({"model_id": "m", "input_data": "hi", "parameters": [1]}, "$.parameters", "expected an object",
                 id="parameters-list"),
]

BAD_PARAMETERS = [
    pytest.param({"frequency_penalty": 0.5}, "$.parameters", "unknown field(s): frequency_penalty",
                 id="unknown-frequency_penalty"),
    pytest.param({"max_tokens": "5"}, "$.parameters.max_tokens", "expected an integer", id="max_tokens-string"),
    pytest.param({"max_tokens": True}, "$.parameters.max_tokens", "expected an integer", id="max_tokens-bool"),
    pytest.param({"max_tokens": 5.5}, "$.parameters.max_tokens", "expected an integer", id="max_tokens-float"),
    pytest.param({"max_tokens": 0}, "$.parameters.max_tokens", "at least 1", id="max_tokens-zero"),
    pytest.param({"temperature": "hot"}, "$.parameters.temperature", "expected a number", id="temperature-string"),
    pytest.param({"temperature": True}, "$.parameters.temperature", "expected a number", id="temperature-bool"),
    pytest.param({"temperature": 2.5}, "$.parameters.temperature", "between 0 and 2", id="temperature-too-high"),
    pytest.param({"top_p": 1.5}, "$.parameters.top_p", "between 0 and 1", id="top_p-out-of-range"),
    pytest.param({"top_k": 0}, "$.parameters.top_k", "at least 1", id="top_k-zero"),
    pytest.param({"stop": 5}, "$.parameters.stop", "string", id="stop-number"),
    pytest.param({"stop": ["a", 5]}, "$.parameters.stop", "string", id="stop-list-with-number"),
    pytest.param({"stop": ["a", "b", "c", "d", "e"]}, "$.parameters.stop", "at most 4", id="stop-five-sequences"),
    pytest.param({"stop": ["a", "x" * 257]}, "$.parameters.stop", "at most 256 characters", id="stop-too-long"),
    pytest.param({"seed": "7"}, "$.parameters.seed", "expected an integer", id="seed-string"),
]


@PROMPT_ENDPOINTS
@pytest.mark.parametrize(("payload", "path", "what"), ONE_PROBLEM)
async def test_malformed_prompt_is_refused_naming_the_field(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, payload: dict[str, Any], path: str, what: str,
) -> None:
    response = await gateway.post(endpoint, json=payload)
    # For the stream endpoint too: a plain JSON 400, never a 200 event stream.
    body = await refusal(response, 400, "invalid_input")
    assert_one_problem_at(body, path, what)
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
@pytest.mark.parametrize(("parameters", "path", "what"), BAD_PARAMETERS)
async def test_bad_parameter_is_refused_naming_it(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str,
    parameters: dict[str, Any], path: str, what: str,
) -> None:
    response = await gateway.post(endpoint, json={**GOOD, "parameters": parameters})
    body = await refusal(response, 400, "invalid_input")
    assert_one_problem_at(body, path, what)
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
async def test_every_problem_of_a_body_is_listed_at_once(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str,
) -> None:
    payload = {
        "messages": [{"role": "wizard"}],
        "parameters": {"max_tokens": "5", "top_p": 2, "frequency_penalty": 1},
        "prompt": "hi",
    }
    response = await gateway.post(endpoint, json=payload)
    body = await refusal(response, 400, "invalid_input")
    paths = sorted(problem.rpartition(" @ ")[2] for problem in body["errors"])
    assert paths == sorted([
        "$", "$.model_id", "$.messages[0].role", "$.messages[0].content",
        "$.parameters", "$.parameters.max_tokens", "$.parameters.top_p",
    ])
    assert any("frequency_penalty" in problem for problem in body["errors"])
    assert any("prompt" in problem for problem in body["errors"])
    for problem in body["errors"]:
        assert problem in body["message"]
    assert_nothing_forwarded(upstreams)


@PROMPT_ENDPOINTS
async def test_prompt_rules_are_listed_with_the_field_problems(
    gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str,
) -> None:
    response = await gateway.post(endpoint, json={"model_id": 5, "messages": []})
    body = await refusal(response, 400, "invalid_input")
    assert sorted(body["errors"]) == sorted(["expected a string @ $.model_id", "must not be empty @ $.messages"])

    response = await gateway.post(endpoint, json={})
    body = await refusal(response, 400, "invalid_input")
    assert sorted(body["errors"]) == sorted([
        "required field missing @ $.model_id", "exactly one of messages and input_data is required @ $",
    ])
    assert_nothing_forwarded(upstreams)


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "payload"), [
    (INFERENCE, {"model_id": "gemma3:1b", "input_data": "x" * 2000}),
    (STREAM, {"model_id": "gemma3:1b", "input_data": "x" * 2000}),
    (EMBEDDINGS, {"model_id": "nomic-embed-text", "input": "x" * 2000}),
])
async def test_body_over_the_size_limit_is_refused_with_413(
    limited_gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str, payload: dict[str, Any],
) -> None:
    response = await limited_gateway.post(endpoint, json=payload)
    body = await refusal(response, 413, "payload_too_large")
    assert "1024" in body["message"]
    assert_nothing_forwarded(upstreams)


async def test_body_under_the_size_limit_is_served(limited_gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await limited_gateway.post(INFERENCE, json=GOOD)
    assert response.status == 200, await response.text()
    assert ollama.recorder.paths() == ["/api/chat"]


@PROMPT_ENDPOINTS
async def test_more_messages_than_the_limit_are_refused(
    limited_gateway: TestClient, upstreams: list[RunningUpstream], endpoint: str,
) -> None:
    response = await limited_gateway.post(endpoint, json={"model_id": "gemma3:1b", "messages": [USER] * 3})
    body = await refusal(response, 400, "invalid_input")
    assert_one_problem_at(body, "$.messages", "at most 2 messages")
    assert_nothing_forwarded(upstreams)


async def test_messages_up_to_the_limit_are_served(limited_gateway: TestClient, ollama: RunningUpstream) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    response = await limited_gateway.post(INFERENCE, json={"model_id": "gemma3:1b", "messages": messages})
    assert response.status == 200, await response.text()
    assert ollama.recorder.requests[-1].json["messages"] == messages


# --- embeddings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "path", "what"), [
    pytest.param({"model_id": "nomic-embed-text"}, "$.input", "required", id="input-missing"),
    pytest.param({"model_id": "nomic-embed-text", "input": []}, "$.input", "must not be empty", id="input-empty-list"),
    pytest.param({"model_id": "nomic-embed-text", "input": ["a", 1]}, "$.input", "string", id="input-list-with-number"),
    pytest.param({"model_id": "nomic-embed-text", "input": 5}, "$.input", "string", id="input-number"),
    pytest.param({"input": "a"}, "$.model_id", "required", id="model_id-missing"),
    pytest.param({"model_id": "nomic-embed-text", "input": "a", "dimensions": 8}, "$", "unknown field(s): dimensions",
                 id="unknown-field"),
    pytest.param({"model_id": "nomic-embed-text", "input": ["a", "b", "c"]}, "$.input", "at most 2 texts",
                 id="too-many-inputs"),
])
async def test_bad_embeddings_request_is_refused_naming_the_field(
    limited_gateway: TestClient, upstreams: list[RunningUpstream], payload: dict[str, Any], path: str, what: str,
) -> None:
    response = await limited_gateway.post(EMBEDDINGS, json=payload)
    body = await refusal(response, 400, "invalid_input")
    assert_one_problem_at(body, path, what)
    assert_nothing_forwarded(upstreams)


async def test_embeddings_at_the_input_limit_are_served(limited_gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await limited_gateway.post(EMBEDDINGS, json={"model_id": "nomic-embed-text", "input": ["a", "b"]})
    assert response.status == 200, await response.text()
    assert ollama.recorder.requests[-1].json["input"] == ["a", "b"]


# --- routes and methods -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/nope"),
    ("GET", "/api/v1/nope"),
    ("POST", "/api/v1/inference/nope"),
    ("GET", "/api/v2/health"),
])
async def test_unknown_route_is_a_json_404(
    gateway: TestClient, upstreams: list[RunningUpstream], method: str, path: str,
) -> None:
    response = await gateway.request(method, path, json=GOOD)
    body = await refusal(response, 404, "not_found")
    assert path in body["message"]
    assert_nothing_forwarded(upstreams)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", INFERENCE),
    ("GET", STREAM),
    ("GET", "/api/v1/inference/batch"),
    ("GET", EMBEDDINGS),
    ("PUT", INFERENCE),
    ("POST", "/api/v1/health"),
    ("DELETE", "/api/v1/inference/health"),
])
async def test_wrong_method_is_a_json_405(
    gateway: TestClient, upstreams: list[RunningUpstream], method: str, path: str,
) -> None:
    response = await gateway.request(method, path)
    body = await refusal(response, 405, "method_not_allowed")
    assert method in body["message"]
    assert path in body["message"]
    assert_nothing_forwarded(upstreams)


@pytest.mark.parametrize(("method", "path", "allowed"), [("GET", INFERENCE, "POST"), ("POST", "/api/v1/health", "GET")])
async def test_405_names_the_allowed_methods(gateway: TestClient, method: str, path: str, allowed: str) -> None:
    # RFC 9110 15.5.6: a 405 MUST carry Allow.
    response = await gateway.request(method, path)
    assert response.status == 405
    assert allowed in response.headers.get("Allow", "")
