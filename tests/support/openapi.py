"""Checking real traffic against the gateway's served OpenAPI description."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


class Described:
    """The served description, and checks of traffic against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator({**schema, "components": self.document["components"]})

    def operation(self, method: str, path: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.document["paths"][path][method.lower()]
        return operation

    def accepts(self, method: str, path: str, body: Any) -> bool:
        schema = self.operation(method, path)["requestBody"]["content"]["application/json"]["schema"]
        return self._validator(schema).is_valid(body)

    def check_answer(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        responses = self.operation(method, path)["responses"]
        described = responses.get(str(status), responses["default"])
        schema = described["content"][content_type]["schema"]
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in self._validator(schema).iter_errors(body)]
        assert not errors, f"{method} {path} {status} does not conform: {errors}"

