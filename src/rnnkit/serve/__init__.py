"""Serve a trained run over HTTP: a JSON API (FastAPI + uvicorn), micro-batching, and a playground page.

    rnnkit serve RUN_DIR [--host 127.0.0.1] [--port 8000] [--backend torch|onnx] [--workers N]
    from rnnkit.serve import create_app;  app = create_app("runs/sst")      # any ASGI server, or TestClient

The run is loaded from its safetensors and JSON only (no code execution). Binds 127.0.0.1 unless told
otherwise. docs/serve.md lists the endpoints, the limits and their status codes.
"""

from __future__ import annotations

import os

from rnnkit.serve.app import Limits, create_app, require_serve

__all__ = ["Limits", "create_app", "serve"]

_ENV = "RNNKIT_SERVE"  # --workers N: each uvicorn worker process rebuilds the app from this


def serve(run_dir, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", workers: int = 1,
          limits: Limits | None = None, log_level: str = "info") -> None:
    """Run the server until interrupted (uvicorn)."""
    import json
    from dataclasses import asdict

    require_serve()
    import uvicorn

    limits = limits or Limits()
    if workers <= 1:
        uvicorn.run(create_app(run_dir, backend, limits), host=host, port=port, log_level=log_level)
        return
    create_app(run_dir, backend, limits)  # fail here, once, on a bad run directory
    os.environ[_ENV] = json.dumps({"run_dir": str(run_dir), "backend": backend, "limits": asdict(limits)})
    # each worker loads the run before it answers uvicorn's health check: allow for a slow (loaded) machine
    uvicorn.run("rnnkit.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, timeout_worker_healthcheck=120)


def app_from_env():
    """The app of one uvicorn worker process (serve(..., workers=N))."""
    import json

    spec = json.loads(os.environ[_ENV])
    return create_app(spec["run_dir"], spec["backend"], Limits(**spec["limits"]))
