"""Serve a trained run over HTTP: a JSON API (FastAPI + uvicorn), micro-batching, and a playground page.

    rnnkit serve RUN_DIR [--host 127.0.0.1] [--port 8000] [--backend torch|onnx] [--workers N] [--threads N]
    from rnnkit.serve import create_app;  app = create_app("runs/sst")      # any ASGI server, or TestClient

The run is loaded from its safetensors and JSON only (no code execution). Binds 127.0.0.1 unless told
otherwise. docs/serve.md lists the endpoints, the limits and their status codes.
"""

from __future__ import annotations

import os

from rnnkit.serve.app import Limits, create_app, require_serve

__all__ = ["Limits", "create_app", "default_threads", "serve"]

_ENV = "RNNKIT_SERVE"  # --workers N: each uvicorn worker process rebuilds the app from this


def default_threads(workers: int = 1) -> int:
    """Model threads per worker when none are given: the CPUs this process may use, shared by the workers."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, workers))


def serve(run_dir, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", workers: int = 1,
          limits: Limits | None = None, log_level: str = "info", threads: int | None = None) -> None:
    """Run the server until interrupted (uvicorn). ``threads``: each worker's model threads, torch's and
    onnxruntime's (default: default_threads(workers), so the workers together use every CPU once)."""
    import json
    from dataclasses import asdict

    require_serve()
    import torch
    import uvicorn

    limits = limits or Limits()
    threads = threads or default_threads(workers)
    if workers <= 1:
        torch.set_num_threads(threads)
        uvicorn.run(create_app(run_dir, backend, limits, threads), host=host, port=port, log_level=log_level)
        return
    create_app(run_dir, backend, limits, threads)  # fail here, once, on a bad run directory
    os.environ[_ENV] = json.dumps({"run_dir": str(run_dir), "backend": backend, "limits": asdict(limits),
                                   "threads": threads})
    # each worker loads the run before it answers uvicorn's health check: allow for a slow (loaded) machine
    uvicorn.run("rnnkit.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, timeout_worker_healthcheck=120)


def app_from_env():
    """The app of one uvicorn worker process (serve(..., workers=N))."""
    import json

    import torch

    spec = json.loads(os.environ[_ENV])
    torch.set_num_threads(spec["threads"])
    return create_app(spec["run_dir"], spec["backend"], Limits(**spec["limits"]), spec["threads"])
