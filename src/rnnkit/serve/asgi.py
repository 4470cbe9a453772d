"""The lean request path of the batched endpoints: raw ASGI in front of FastAPI's stack.

``POST /v1/predict`` and ``POST /v1/translate`` are answered here: the body is read once (counted against the
limit: 413), decoded once and validated by the endpoint's pydantic model (the same 422
messages FastAPI's validation gives), and the answer is JSON bytes written in one message. Every other request
(``/v1/generate`` and its stream, ``GET``s, ``/docs``, a path with a prefix or a trailing slash) goes through
the FastAPI app as usual, where the same two routes are declared (with the same handlers) for the OpenAPI docs.
Middleware added to the app with ``add_middleware`` does not see the two batched endpoints.

Profiled on the benchmark's classify server (bench/serve.py), FastAPI's middleware, routing and dependency
layers cost about as much event-loop time per request as the rest together, and with many clients that time
decides how long the model waits between two batches.
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from pydantic import ValidationError

_JSON = [(b"content-type", b"application/json")]


class ServeError(Exception):
    """An answer other than 200: status and message, sent as {"error": message, "status": status}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def json_bytes(obj) -> bytes:
    """The JSON encoding FastAPI's JSONResponse uses (UTF-8, compact, NaN refused)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def error_body(status: int, message: str) -> bytes:
    return json_bytes({"error": message, "status": status})


def validation_message(errors) -> str:
    """pydantic / FastAPI validation errors as one line: `field: message; ...` (at most 3)."""
    parts = []
    for e in list(errors)[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid request')}")
    return "; ".join(parts) or "invalid request"


def parse(model, raw: bytes):
    """The request body as `model` (a pydantic model), or ServeError 422: pydantic's messages, as FastAPI gives
    them (it too decodes the JSON first, then validates the Python value); malformed JSON says where."""
    try:
        value = json.loads(raw)
    except ValueError as e:  # json.JSONDecodeError, or bytes that are not UTF-8
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise ServeError(422, f"body: invalid JSON: {getattr(e, 'msg', e)}{where}") from None
    try:
        return model.model_validate(value, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as e:
        raise ServeError(422, validation_message(e.errors())) from None


async def read_body(scope, receive, limit: int) -> bytes:
    """The whole request body; ServeError 413 when over `limit` bytes (by Content-Length, or counted)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise ServeError(413, f"request body of {int(value)} bytes, over the limit of {limit}")
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ServeError(400, "the client disconnected before the body was sent")
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise ServeError(413, f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def answer(handler, raw: bytes) -> tuple[int, bytes]:
    """(status, JSON body) of `handler(raw)`: its bytes, a ServeError's message, or a 500 without a traceback."""
    try:
        return 200, await handler(raw)
    except ServeError as e:
        return e.status, error_body(e.status, e.message)
    except Exception as e:  # a bug: the message only
        return 500, error_body(500, f"internal error: {type(e).__name__}: {e}")


class ServeApp(FastAPI):
    """A FastAPI app whose `hot` routes ({path: async handler(raw body) -> JSON bytes}, POST) skip its stack."""

    def __init__(self, *args, max_body_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.hot: dict = {}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        handler = self.hot.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            return await super().__call__(scope, receive, send)
        try:
            raw = await read_body(scope, receive, self.max_body_bytes)
        except ServeError as e:
            return await send_bytes(send, e.status, error_body(e.status, e.message))
        await send_bytes(send, *await answer(handler, raw))
