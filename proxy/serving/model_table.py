"""The routing table: one public model name for clients, the right name on each backend.

Read from the TOML file named by PROXY_ROUTES_FILE:

    unknown_models = "pass"            # or "refuse": a model_id not listed is a 404

    [models."phi-4-mini"]
    kinds = ["chat"]                   # "chat", "embeddings" or both
    max_tokens = { default = 256, max = 1024 }
    cache = "private"                  # or "shared", "off": the answer cache (docs/cache.md)
    backends = [
      { backend = "ollama", model = "phi4-mini" },
      { backend = "openai", model = "gpt-4o-mini" },
    ]

`backend` names a configured backend ("ollama", or "ollama-1", "ollama-2" ... when
OLLAMA_BASE_URL lists several; "openai" likewise). The listed order is the order tried.
Without a file every model_id passes through unchanged to every backend, Ollama first.

A file that does not fit stops start-up with a message naming the line and the field; a
file changed while running is reloaded, and a bad change keeps the table in force.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from attrs import define, frozen

from proxy.errors import ModelNotFound
from proxy.llm import GenerationRequest, Parameters
from proxy.settings.toml_lines import line_of

log = logging.getLogger("proxy")

Kind = Literal["chat", "embeddings"]
G = TypeVar("G", bound=GenerationRequest)


class RoutesError(Exception):
    """The routing file cannot be used; the message names the line and the field."""


@frozen
class Target:
    backend: str
    model: str


@frozen
class TokenLimits:
    default: int | None = None
    max: int | None = None


@frozen
class Route:
    backends: tuple[Target, ...]
    kinds: tuple[Kind, ...] = ("chat",)
    max_tokens: TokenLimits = TokenLimits()
    # The answer cache (docs/cache.md): "private" (each key its own entries), "shared"
    # (one set for every key), "off" (even for keys that turn it on); unset: the key decides.
    cache: Literal["private", "shared", "off"] | None = None

    def parameters(self, asked: Parameters) -> Parameters:
        """The client's parameters with this model's default and ceiling for max_tokens."""
        wanted = asked.max_tokens if asked.max_tokens is not None else self.max_tokens.default
        if wanted is not None and self.max_tokens.max is not None:
            wanted = min(wanted, self.max_tokens.max)
        return attrs.evolve(asked, max_tokens=wanted)


@frozen
class RouteFile:
    models: Mapping[str, Route]
    unknown_models: Literal["pass", "refuse"] = "pass"


_converter = cattrs.Converter(forbid_extra_keys=True)


@frozen
class RouteTable:
    routes: Mapping[str, Route]
    refuse_unknown: bool = False

    @classmethod
    def passthrough(cls) -> RouteTable:
        return cls(routes={})

    @classmethod
    def parse(cls, text: str, backend_names: Sequence[str], source: str = "routes file") -> RouteTable:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RoutesError(f"{source}: {exc}") from None
        try:
            parsed = _converter.structure(data, RouteFile)
        except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as exc:
            problems = cattrs.transform_error(exc, format_exception=_describe)
            raise RoutesError("; ".join(f"{source}: {_locate(text, p)}" for p in problems)) from None
        problems = [
            f"{source}: line {line_of(text, 'models', model, problem.split('[')[0].split('.')[0].split()[0])}: "
            f"models.{model!r}.{problem}"
            for model, route in parsed.models.items()
            for problem in _route_problems(route, backend_names)
        ]
        if problems:
            raise RoutesError("; ".join(problems))
        return cls(routes=dict(parsed.models), refuse_unknown=parsed.unknown_models == "refuse")

    def resolve(self, request: G) -> tuple[G, Route | None]:
        """The request (a chat or a text completion: both are the "chat" kind) as its route
        wants it (max_tokens default and ceiling), and the route."""
        route = self.route(request.model, "chat")
        if route is None:
            return request, None
        return attrs.evolve(request, parameters=route.parameters(request.parameters)), route

    def route(self, model_id: str, kind: Kind | None) -> Route | None:
        """The route for `model_id`, None to pass it through; 404 when it may not be served
        (as `kind`; None: as anything)."""
        route = self.routes.get(model_id)
        if route is None:
            if self.refuse_unknown:
                raise ModelNotFound(f"model {model_id!r} is not in the routing table")
            return None
        if kind is not None and kind not in route.kinds:
            raise ModelNotFound(f"model {model_id!r} serves {' and '.join(route.kinds)}, not {kind}")
        return route


@define
class Routes:
    """The table in force, and the file it came from, watched for changes."""

    table: RouteTable
    path: pathlib.Path | None = None
    _stamp: float | None = None

    @classmethod
    def load(cls, path: str | None, backend_names: Sequence[str]) -> Routes:
        if path is None:
            return cls(table=RouteTable.passthrough())
        file = pathlib.Path(path)
        try:
            stamp, text = file.stat().st_mtime, file.read_text(encoding="utf-8")
        except OSError as exc:
            raise RoutesError(f"PROXY_ROUTES_FILE={path}: {exc.strerror}") from None
        return cls(table=RouteTable.parse(text, backend_names, source=str(file)), path=file, stamp=stamp)

    def reload_if_changed(self, backend_names: Sequence[str]) -> bool:
        """Re-read a changed file; a file that does not fit leaves the table in force."""
        if self.path is None:
            return False
        try:
            stamp = self.path.stat().st_mtime
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            self.table = RouteTable.parse(self.path.read_text(encoding="utf-8"), backend_names, str(self.path))
        except (OSError, RoutesError) as exc:
            log.error("routing table not reloaded, the previous one stays in force: %s", exc)  # noqa: TRY400 (no traceback: the message says it all)
            return False
        log.info("routing table reloaded from %s: %d models", self.path, len(self.table.routes))
        return True

    async def watch(self, backend_names: Sequence[str], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.reload_if_changed(backend_names)


def _route_problems(route: Route, backend_names: Sequence[str]) -> list[str]:
    problems = []
    if not route.backends:
        problems.append("backends must list at least one backend")
    for i, target in enumerate(route.backends):
        if target.backend not in backend_names:
            problems.append(
                f"backends[{i}].backend {target.backend!r} is not a configured backend "
                f"(configured: {', '.join(backend_names) or 'none'})")
        if not target.model.strip():
            problems.append(f"backends[{i}].model must not be empty")
    if not route.kinds:
        problems.append("kinds must not be empty")
    limits = route.max_tokens
    for name, value in (("default", limits.default), ("max", limits.max)):
        if value is not None and value < 1:
            problems.append(f"max_tokens.{name} must be at least 1")
    if limits.default is not None and limits.max is not None and limits.default > limits.max:
        problems.append("max_tokens.default exceeds max_tokens.max")
    return problems


def _locate(text: str, problem: str) -> str:
    """cattrs' 'what @ $.models.name.field' as 'line N: models.name.field: what'."""
    what, _, path = problem.partition(" @ ")
    match = re.match(r"\$\.models\['([^']+)'\]\.?(\w+)?", path)
    line = line_of(text, "models", match.group(1), match.group(2)) if match else 1
    return f"line {line}: {path.removeprefix('$').lstrip('.') or 'the file'}: {what}"


def _describe(exc: BaseException, expected: object) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown field(s): " + ", ".join(sorted(exc.extra_fields))
    if get_origin(expected) is Literal:
        return f"must be one of {', '.join(map(repr, get_args(expected)))}"
    return f"expected {getattr(expected, '__name__', None) or expected}"
