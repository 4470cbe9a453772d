"""The HTTP application: FastAPI routes over one engine (rnnkit.serve.engines) and one micro-batcher.

    POST /v1/predict     {"inputs": [...]}                       classify, tag, forecast, tree
    POST /v1/generate    {"prime", "length", "temperature", "top_k", "top_p", "greedy", "seed", "stream"}   lm
    POST /v1/translate   {"inputs": [...], "beam": 1, "attention": false}                                  seq2seq
    GET  /v1/health      GET /v1/model      GET / (the playground)      GET /docs (OpenAPI, from FastAPI)

Every error is JSON {"error": message, "status": code}: 413 (body too large), 422 (malformed JSON, a wrong
field, an input over a limit), 404 (an endpoint of another task), 408 (request timeout), 500 (a bug: the
message only, never a traceback).
"""


import asyncio
import tempfile
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATIC = Path(__file__).with_name("static")


@dataclass
class Limits:
    max_body_bytes: int = 1_000_000
    max_inputs: int = 64  # inputs per request
    max_tokens: int = 512  # tokens (rows for forecast) per input
    max_generate: int = 2000  # tokens per /v1/generate
    max_beam: int = 16
    timeout_s: float = 30.0
    max_batch: int = 32  # micro-batch: items per model call (1: one request at a time)
    max_wait_ms: float = 5.0  # micro-batch: how long the first request waits for company


def require_serve():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        from rnnkit.cli.common import UsageError

        raise UsageError("rnnkit serve needs the serve extra: pip install 'rnnkit[serve]'") from None


class BodyLimit:
    """ASGI middleware of the FastAPI stack: the body is read first (rnnkit.serve.asgi.read_body), so one over
    ``limit`` bytes is answered 413 before any route parses it (FastAPI would answer an error raised while
    it reads a body 400); the app then receives the body in one message."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        from rnnkit.serve.asgi import ServeError, error_body, read_body, send_bytes

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            body = await read_body(scope, receive, self.limit)
        except ServeError as e:
            return await send_bytes(send, e.status, error_body(e.status, e.message))
        given = False

        async def replay():  # the body once, then the connection's own messages (a disconnect)
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def _body_schema(model) -> dict:
    """openapi_extra declaring a route's JSON body as `model` (the route reads and validates it itself)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def create_app(run_dir, backend: str = "torch", limits: Limits | None = None, threads: int = 1):
    """The FastAPI app serving the run in RUN_DIR with the torch or the onnx backend.

    ``threads``: onnxruntime's intra-op threads per model call (onnx backend). The torch backend uses the
    process's own torch threads (``torch.set_num_threads``; serve() sets both)."""
    require_serve()
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, Response, StreamingResponse
    from starlette.exceptions import HTTPException

    from rnnkit.serve import schemas
    from rnnkit.serve.asgi import ServeApp, ServeError, error_body, json_bytes, parse, validation_message
    from rnnkit.serve.batching import MicroBatcher
    from rnnkit.serve.engines import InputError

    limits = limits or Limits()
    engine, keep = load_engine(run_dir, backend, limits, threads)
    batcher = MicroBatcher(engine.run_batch, limits.max_batch, limits.max_wait_ms)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()
        if keep is not None:
            keep.cleanup()

    app = ServeApp(title=f"rnnkit {engine.task}", lifespan=lifespan, max_body_bytes=limits.max_body_bytes,
                   description=f"Serving {engine.task} run {run_dir} with the {backend} backend")
    app.state.engine, app.state.batcher, app.state.limits = engine, batcher, limits
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)

    def error(status: int, message: str):
        return Response(error_body(status, message), status_code=status, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request, exc):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(ServeError)
    async def _serve(request, exc):
        return error(exc.status, exc.message)

    @app.exception_handler(Exception)
    async def _bug(request, exc):
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    async def batched(items):
        try:
            return await asyncio.wait_for(batcher.submit(items), limits.timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(408, f"request timed out after {limits.timeout_s:g} s") from None

    def only(endpoint: str):
        if engine.endpoint != endpoint:
            raise ServeError(404, f"a {engine.task} run does not serve /v1/{endpoint}; it serves "
                                  f"/v1/{engine.endpoint}")

    def checked(inputs: list, **options) -> list:
        if len(inputs) > limits.max_inputs:
            raise ServeError(422, f"inputs: {len(inputs)} inputs, more than the limit of {limits.max_inputs}")
        if options and engine.task != "forecast":
            raise ServeError(422, f"{', '.join(options)}: only a forecast run takes {' and '.join(options)}; "
                                  f"this is a {engine.task} run")
        try:
            return engine.check(inputs, **options)
        except InputError as e:
            raise ServeError(422, str(e)) from None

    async def predict_json(raw: bytes) -> bytes:
        body = parse(schemas.PredictRequest, raw)
        only("predict")
        return json_bytes({"outputs": await batched(checked(body.inputs, **body.options()))})

    async def translate_json(raw: bytes) -> bytes:
        body = parse(schemas.TranslateRequest, raw)
        only("translate")
        if body.beam > limits.max_beam:
            raise ServeError(422, f"beam: {body.beam}, more than the limit of {limits.max_beam}")
        items = [(x, tokens, body.beam, body.attention) for x, tokens in checked(body.inputs)]
        return json_bytes({"outputs": await batched(items)})

    app.hot = {"/v1/predict": predict_json, "/v1/translate": translate_json}  # rnnkit.serve.asgi answers these

    @app.post("/v1/predict", openapi_extra=_body_schema(schemas.PredictRequest))
    async def predict(request: Request):
        return Response(await predict_json(await request.body()), media_type="application/json")

    @app.post("/v1/translate", openapi_extra=_body_schema(schemas.TranslateRequest))
    async def translate(request: Request):
        return Response(await translate_json(await request.body()), media_type="application/json")

    @app.post("/v1/generate")
    async def generate(body: schemas.GenerateRequest, request: Request):
        only("generate")
        if body.length > limits.max_generate:
            raise ServeError(422, f"length: {body.length}, more than the limit of {limits.max_generate}")
        try:
            engine.prime_ids(body.prime)
            options = body.sampling()
        except (InputError, ValueError) as e:
            raise ServeError(422, str(e)) from None
        tokens = engine.generate(body.prime, body.length, options, body.seed)
        if not body.stream:
            try:
                text = await asyncio.wait_for(asyncio.to_thread(lambda: list(tokens)), limits.timeout_s)
            except asyncio.TimeoutError:
                raise ServeError(408, f"request timed out after {limits.timeout_s:g} s") from None
            return {"prime": body.prime, "tokens": text, "text": body.prime + engine.join(text)}
        return StreamingResponse(schemas.events(tokens, body.prime, engine.join), media_type="text/event-stream")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": engine.task, "backend": backend, "batches": batcher.batches,
                "items": batcher.items}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {"task": engine.task, "backend": backend, "endpoint": f"/v1/{engine.endpoint}",
                "run_dir": str(run_dir), "config": engine.run.config, "metrics": engine.metrics,
                "limits": asdict(limits), "threads": engine.threads(), **engine.info()}

    @app.get("/", response_class=HTMLResponse)
    async def playground():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return app


def load_engine(run_dir, backend: str, limits: Limits, threads: int = 1):
    """(engine, temporary directory of the onnx export or None); safetensors + JSON only."""
    from rnnkit.cli.common import UsageError
    from rnnkit.export import load, task_of
    from rnnkit.serve.engines import ENGINES

    if backend not in ("torch", "onnx"):
        raise UsageError(f"--backend {backend}: expected torch or onnx")
    task = task_of(run_dir)
    if backend == "onnx" and task == "tree":
        from rnnkit.export import TREE

        raise UsageError(f"--backend onnx: {TREE}; serve it with --backend torch")
    if task not in ENGINES:
        raise UsageError(f"{run_dir}: a {task!r} run cannot be served")
    run = load(run_dir)
    keep, onnx_dir = None, None
    if backend == "onnx":
        from rnnkit.export import export_run

        keep = tempfile.TemporaryDirectory(prefix="rnnkit-serve-")
        onnx_dir = export_run(run, Path(keep.name) / "onnx", source=str(run_dir))
    engine = ENGINES[task](run, backend, limits, onnx_dir, threads)
    engine.task, engine.run_dir = task, Path(run_dir)
    from rnnkit.serve.engines import best_metrics

    engine.metrics = best_metrics(run_dir, run.task)
    return engine, keep
