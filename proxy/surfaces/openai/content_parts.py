"""A /v1 message's `content`: a string, or text and image parts, checked at the edge.

Images come as `image_url` parts. A `data:` URL is decoded here, once: a malformed one or
one over MAX_IMAGE_BYTES is a 400 naming its part, and backends get its base64 payload.
An http(s) URL is kept as is and never fetched by the gateway (no request forgery through
it): only backends that fetch URLs themselves (OpenAI-compatible ones) can serve it.
"""

from __future__ import annotations

import base64
import binascii
import re

from attrs import frozen

from proxy.llm import Image
from proxy.surfaces.request_bodies import FieldError

# Decoded size of one image; OpenAI's own limit per image is 20 MB, Ollama's context far less.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES_PER_MESSAGE = 16
_DATA_URL = re.compile(r"data:(image/[a-zA-Z0-9.+-]+);base64,(.*)", re.DOTALL)
_DETAILS = ("auto", "low", "high")


@frozen
class Content:
    text: str
    images: tuple[Image, ...] = ()


def message_content(v: object, _: object) -> Content:
    """A string, or a list of text and image_url parts (text parts joined by newlines)."""
    if isinstance(v, str):
        return Content(v)
    if not isinstance(v, list):
        raise FieldError("expected a string or a list of content parts")
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(v):
        where = f"content part [{i}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise FieldError(f'{where}: expected a part like {{"type": "text", "text": "..."}}')
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise FieldError(f"{where}: a text part needs a string 'text'")
            texts.append(part["text"])
        elif part["type"] == "image_url":
            images.append(_image(part.get("image_url"), where))
        else:
            raise FieldError(f"{where}: parts of type {part['type']!r} are not supported; only text and image_url")
    if len(images) > MAX_IMAGES_PER_MESSAGE:
        raise FieldError(f"at most {MAX_IMAGES_PER_MESSAGE} images per message")
    return Content("\n".join(texts), tuple(images))


def _image(spec: object, where: str) -> Image:
    if isinstance(spec, str):  # some clients send the URL itself
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise FieldError(f'{where}: expected "image_url": {{"url": "data:image/...;base64,..." or "https://..."}}')
    url, detail = spec["url"], spec.get("detail")
    if detail is not None and detail not in _DETAILS:
        raise FieldError(f"{where}: image_url.detail must be one of {', '.join(_DETAILS)}")
    if url.startswith(("http://", "https://")):
        return Image(url=url, detail=detail)
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise FieldError(f"{where}: image_url.url must be a data:image/...;base64,... URL or an http(s) URL")
    payload = match.group(2)
    decoded_image(payload, where, "image_url.url is not valid base64 after 'base64,'")
    return Image(url=url, base64=payload, detail=detail)


def decoded_image(payload: str, where: str, not_base64: str = "not valid base64") -> bytes:
    """The bytes of a base64 image: FieldError when it is not base64, empty or too large."""
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise FieldError(f"{where}: the image is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(f"{where}: {not_base64}") from None
    if not decoded:
        raise FieldError(f"{where}: the image is empty")
    return decoded


def media_type(image: bytes) -> str | None:
    """The image's media type, read from its first bytes (the formats vision APIs take)."""
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if image.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if image.startswith(b"RIFF") and image[8:12] == b"WEBP":
        return "image/webp"
    return None


def base64_image(payload: str, where: str) -> Image:
    """A bare base64 image (Ollama's `images`) as a data: URL of the media type its bytes
    show: a client's word for it would be a guess, and a wrong one is refused upstream."""
    kind = media_type(decoded_image(payload, where))
    if kind is None:
        raise FieldError(f"{where}: not a PNG, JPEG, GIF or WebP image")
    return Image(url=f"data:{kind};base64,{payload}", base64=payload)
