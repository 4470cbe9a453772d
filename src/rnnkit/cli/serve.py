"""`rnnkit serve RUN_DIR`: the run behind an HTTP JSON API, with a playground page at / (rnnkit.serve)."""
from __future__ import annotations

from rnnkit.cli.common import positive_int


def register(train_sub, sub) -> None:
    p = sub.add_parser("serve", help="serve a trained run over HTTP (JSON API, micro-batching, playground at /)",
                       description="POST /v1/predict, /v1/generate (server-sent events), /v1/translate; GET "
                       "/v1/health, /v1/model, / (playground), /docs. See docs/serve.md.")
    p.add_argument("run_dir", help="a run directory written by `rnnkit train`")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000)
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch: the run's model; onnx: its ONNX export through onnxruntime")
    p.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="model threads per worker, torch's and onnxruntime's (default: the CPUs / workers)")
    p.add_argument("--max-batch", type=positive_int, default=32, help="micro-batch size (1: one at a time)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits to be batched")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a request is answered 408")
    p.add_argument("--max-body", type=positive_int, default=1_000_000, help="largest request body in bytes (413)")
    p.set_defaults(run=run_serve)


def run_serve(args) -> int:
    from rnnkit.serve import Limits, default_threads, serve

    limits = Limits(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, timeout_s=args.timeout,
                    max_body_bytes=args.max_body)
    threads = args.threads or default_threads(args.workers)
    print(f"rnnkit serve: http://{args.host}:{args.port}/ (playground), /docs (API), backend {args.backend}, "
          f"{args.workers} worker(s) x {threads} thread(s)")
    serve(args.run_dir, args.host, args.port, args.backend, args.workers, limits, threads=threads)
    return 0
