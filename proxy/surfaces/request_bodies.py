"""The field types every surface's request bodies are built from, and the one cattrs
converter that checks them.

Bodies are structured at the edge: a body that does not fit becomes one `InvalidInput`
listing every problem with its JSON path ("expected an integer @ $.parameters.max_tokens"),
before anything reaches a backend. Values are checked against what *both* backend kinds
accept, so a request valid here is never refused by the fallback for its parameters.
Each surface's bodies live with it, in its `request_models.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import NoneType, UnionType
from typing import Any, NewType, TypeVar, Union, get_args, get_origin

import cattrs
from cattrs.cols import list_structure_factory

from proxy.errors import InvalidInput

T = TypeVar("T")


class FieldError(ValueError):
    """A value of the right JSON type that is still wrong; its text is shown as is."""


ModelId = NewType("ModelId", str)
Temperature = NewType("Temperature", float)
TopP = NewType("TopP", float)
PositiveInt = NewType("PositiveInt", int)
TokenCount = NewType("TokenCount", int)
Seed = NewType("Seed", int)
StopSequences = NewType("StopSequences", tuple[str, ...])
Texts = NewType("Texts", tuple[str, ...])
Penalty = NewType("Penalty", float)
SchemaObject = NewType("SchemaObject", dict[str, Any])

MAX_MODEL_ID = 256
# Upstreams are Go (Ollama: int) and C++ (llama.cpp: int32) programs: larger numbers
# overflow there and come back as a 400 the fallback cannot mend.
MAX_TOKEN_COUNT = 2**31 - 1
SEED_RANGE = (-(2**63), 2**63 - 1)
MAX_STOP_SEQUENCES = 4  # OpenAI's limit, so a fallback never refuses what Ollama took
# Characters per stop sequence: far above any real one; an upstream checks every sequence
# against the output at each token, so a huge one costs it on every token.
MAX_STOP_LENGTH = 256


# --- strict scalar hooks ------------------------------------------------------------
# cattrs' defaults coerce ("5" -> 5, 1.9 -> 1, true -> 1); a gateway must not guess.


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _strict_int(v: object, _: object) -> int:
    if not _is_int(v):
        raise FieldError("expected an integer")
    return v  # type: ignore[return-value]


def _strict_str(v: object, _: object) -> str:
    if not isinstance(v, str):
        raise FieldError("expected a string")
    return v


def _strict_bool(v: object, _: object) -> bool:
    if not isinstance(v, bool):
        raise FieldError("expected true or false")
    return v


def _number_in(low: float, high: float) -> Callable[[object, object], float]:
    def hook(v: object, _: object) -> float:
        if not _is_number(v):
            raise FieldError("expected a number")
        if not low <= v <= high:  # type: ignore[operator]
            raise FieldError(f"must be between {low:g} and {high:g}")
        return float(v)  # type: ignore[arg-type]

    return hook


def _positive_int(v: object, _: object) -> int:
    if not _is_int(v):
        raise FieldError("expected an integer")
    if v < 1:  # type: ignore[operator]
        raise FieldError("must be at least 1")
    return v  # type: ignore[return-value]


def _int_in(low: int, high: int) -> Callable[[object, object], int]:
    def hook(v: object, _: object) -> int:
        if not _is_int(v):
            raise FieldError("expected an integer")
        if v < low:  # type: ignore[operator]
            raise FieldError(f"must be at least {low}")
        if v > high:  # type: ignore[operator]
            raise FieldError(f"must be at most {high}")
        return v  # type: ignore[return-value]

    return hook


def _model_id(v: object, _: object) -> str:
    if not isinstance(v, str):
        raise FieldError("expected a string")
    if not v.strip():
        raise FieldError("must not be empty")
    if len(v) > MAX_MODEL_ID or not v.isprintable():
        raise FieldError(f"must be at most {MAX_MODEL_ID} printable characters")
    return v


def _string_list(v: object, what: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise FieldError(f"expected a string or a list of strings ({what})")
    return tuple(v)


def _stop(v: object, _: object) -> tuple[str, ...]:
    stops = _string_list(v, "stop sequences")
    if len(stops) > MAX_STOP_SEQUENCES or not all(stops):
        raise FieldError(f"expected at most {MAX_STOP_SEQUENCES} non-empty stop sequences")
    if any(len(stop) > MAX_STOP_LENGTH for stop in stops):
        raise FieldError(f"expected stop sequences of at most {MAX_STOP_LENGTH} characters each")
    return stops


def _texts(v: object, _: object) -> tuple[str, ...]:
    texts = _string_list(v, "texts to embed")
    if not texts:
        raise FieldError("must not be empty")
    return texts


def _role_literal(v: object, literal_type: Any) -> object:
    allowed = get_args(literal_type)
    if v not in allowed:
        raise FieldError(f"must be one of {', '.join(allowed)}")
    return v


def _penalty(v: object, _: object) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool) or not -2 <= v <= 2:
        raise FieldError("expected a number between -2 and 2")
    return float(v)


def _schema_object(v: object, _: object) -> dict[str, Any]:
    if not isinstance(v, dict) or v.get("type", "object") != "object":
        raise FieldError('expected a JSON schema object, like {"type": "object", "properties": {...}}')
    return v


def _is_list_type(t: Any) -> bool:
    origin: object = get_origin(t)
    return origin is list


def _is_optional_type(t: Any) -> bool:
    """`X | None` (or Optional[X]) for one type X."""
    args = get_args(t)
    return get_origin(t) in (Union, UnionType) and len(args) == 2 and NoneType in args


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for hooked_type, hook in [
        (int, _strict_int),
        (str, _strict_str),
        (bool, _strict_bool),
        (ModelId, _model_id),
        (Temperature, _number_in(0, 2)),
        (TopP, _number_in(0, 1)),
        (PositiveInt, _positive_int),
        (TokenCount, _int_in(1, MAX_TOKEN_COUNT)),
        (Seed, _int_in(*SEED_RANGE)),
        (StopSequences, _stop),
        (Texts, _texts),
        (Penalty, _penalty),
        (SchemaObject, _schema_object),
    ]:
        converter.register_structure_hook(hooked_type, hook)
    converter.register_structure_hook_func(lambda t: str(get_origin(t)) == "typing.Literal", _role_literal)

    def lists_only(list_type: Any) -> Callable[[object, object], list[Any]]:
        # cattrs would happily iterate a string or a dict where a list belongs.
        inner = list_structure_factory(list_type, converter)

        def hook(v: object, t: object) -> list[Any]:
            if not isinstance(v, list):
                raise FieldError("expected a list")
            structured: list[Any] = inner(v, t)
            return structured

        return hook

    converter.register_structure_hook_factory(_is_list_type, lists_only)

    def optional_of(optional_type: Any) -> Callable[[object, object], Any]:
        # cattrs' own hook for `X | None` looks up X's hook on every call; every optional
        # field of every body goes through it, so this one finds it once.
        inner_type = next(arg for arg in get_args(optional_type) if arg is not NoneType)
        inner = converter.get_structure_hook(inner_type)

        def hook(v: object, _: object) -> Any:
            return None if v is None else inner(v, inner_type)

        return hook

    converter.register_structure_hook_factory(_is_optional_type, optional_of)
    return converter


CONVERTER = _make_converter()


def _describe(exc: BaseException, _type: object) -> str:
    if isinstance(exc, FieldError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown field(s): " + ", ".join(sorted(exc.extra_fields))
    if isinstance(exc, AttributeError | TypeError):
        return "expected an object"
    return f"invalid value ({exc})"


def invalid(problems: Sequence[str]) -> InvalidInput:
    """One 400 listing every problem, each ending with its JSON path."""
    return InvalidInput("invalid request: " + "; ".join(problems), errors=list(problems))


def structure(data: object, cls: type[T], path: str = "$", *, also: Sequence[str] = ()) -> T:
    """`data` as a `cls`, or InvalidInput naming every problem with its path.

    `also` are problems found on the raw data beforehand (across fields), reported
    together with the field problems rather than one round trip later.
    """
    if not isinstance(data, dict):
        raise invalid([f"expected an object @ {path}"])
    try:
        structured = CONVERTER.structure(data, cls)
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as exc:  # every field's problem
        raise invalid([*cattrs.transform_error(exc, path=path, format_exception=_describe), *also]) from None
    if also:
        raise invalid(also)
    return structured
