"""Serving benchmarks, one run: HTTP load test of `rnnkit serve` and batch-1 latency, onnxruntime vs torch eager.

1. Load test on 127.0.0.1 (server in its own process, clients in this one; every run is a fixed number of
   requests, so it stops by itself): a classify run (bi-LSTM, trained one epoch on synthetic text here) served
   with micro-batching (max batch 32, max wait 5 ms) and one request at a time (max batch 1), torch and onnx
   backends; REQUESTS one-text requests (5-30 tokens) from 1, 8 and 32 concurrent clients. Reports
   requests/s, p50/p95/p99 latency and errors (medians of ROUNDS round-robin repeats over the four servers).
   The same texts through the servers' model calls alone (no HTTP), one at a time and in batches of 32:
   what batching saves in the model itself (the HTTP ratio also counts each request's own server work).
2. Batch-1 latency, same weights in both runtimes, one thread each: a classify forward (20 tokens) and one LM
   step of a 2 x 512 character LSTM; generation tokens/s (200 tokens, sampled).

    python bench/serve.py --requests 2000            # the issue's size
    python bench/serve.py --requests 300 --rounds 5      # what docs/benchmarks.md reports (a shared machine)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

WORDS = [f"w{i}" for i in range(2000)]


def make_run(tmp: Path, hidden: int, layers: int) -> Path:
    from rnnkit.tasks import classify
    from rnnkit.train import TrainConfig

    rng = random.Random(0)
    rows = []
    for _ in range(600):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 30))]
        rows.append(f"{' '.join(words)}\t{'pos' if 'w1' in words or 'w2' in words else 'neg'}\n")
    (tmp / "train.tsv").write_text("".join(rows))
    data = classify.ClassifyDataConfig(train=str(tmp / "train.tsv"), batch_size=32)
    corpus = classify.load_corpus(data)
    config = classify.ClassifierConfig(vocab_size=len(corpus.task.vocab), num_classes=2, hidden=hidden, emb=128,
                                       layers=layers, bidirectional=True)
    train = TrainConfig(epochs=1, optimizer="adam", lr=1e-3, progress=False, tensorboard=False, device="cpu")
    classify.fit(tmp / "run", data, config, train, corpus)
    return tmp / "run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`rnnkit serve` in a subprocess on 127.0.0.1; stopped on exit."""

    def __init__(self, run: Path, backend: str, max_batch: int, threads: int = 1):
        self.port = free_port()
        code = ("from rnnkit.serve import Limits, serve; "
                f"serve({str(run)!r}, port={self.port}, backend={backend!r}, log_level='warning', threads={threads}, "
                f"limits=Limits(max_batch={max_batch}, max_wait_ms=5.0, timeout_s=60, max_inputs=64))")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(threads)})

    def __enter__(self):
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def load(port: int, texts: list[str], clients: int) -> dict:
    """Send every text as one request, `clients` connections at a time (HTTP/1.1 keep-alive, a minimal client
    so that the client's own CPU time stays small next to the server's); latencies in ms."""
    latencies, errors = [], 0
    queue = list(texts)

    async def client():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                body = json.dumps({"inputs": [queue.pop()]}).encode()
                start = time.perf_counter()
                writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                answer = json.loads(await reader.readexactly(length))
                latencies.append(1000 * (time.perf_counter() - start))
                errors += not (head.startswith(b"HTTP/1.1 200 ") and len(answer.get("outputs", ())) == 1)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - start
    p = np.percentile(latencies, [50, 95, 99])
    return {"rps": len(texts) / seconds, "p50": p[0], "p95": p[1], "p99": p[2], "errors": errors}


def load_tests(run: Path, n: int, rounds: int, threads: int = 1) -> list[tuple]:
    """The four servers run side by side; every (clients) setting is measured `rounds` times round-robin over
    them (a burst of load from elsewhere on the machine hits all four alike); medians are reported."""
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(n)]
    configs = [(b, m) for b in ("torch", "onnx") for m in (32, 1)]
    rows = []
    with contextlib.ExitStack() as stack:
        servers = {c: stack.enter_context(Server(run, *c, threads)) for c in configs}
        for server in servers.values():
            asyncio.run(load(server.port, texts[:100], 8))  # warm-up
        for clients in (1, 8, 32):
            results = {c: [] for c in configs}
            for _ in range(rounds):
                for c, server in servers.items():
                    results[c].append(asyncio.run(load(server.port, texts, clients)))
            for (backend, max_batch), rs in results.items():
                r = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p95", "p99")}
                r["errors"] = sum(x["errors"] for x in rs)
                mode = "micro-batch 32" if max_batch > 1 else "one at a time"
                rows.append((backend, mode, clients, r))
                print(f"{backend:6} {mode:15} clients {clients:3}: {r['rps']:7.1f} req/s  p50 {r['p50']:6.1f}  "
                      f"p95 {r['p95']:6.1f}  p99 {r['p99']:6.1f} ms  errors {r['errors']}", flush=True)
    return rows


def model_only(run: Path, n: int, threads: int = 1) -> list[tuple]:
    """The servers' model calls alone, in this process (their threads): ms per request for the load test's texts
    one at a time and in batches of 32 (what the engines do with a micro-batch: for onnx, length groups)."""
    from rnnkit.serve.app import Limits, load_engine

    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(n)]
    rows = []
    torch.set_num_threads(threads)  # the torch engine's (the batch-1 latencies after this use 1 again)
    for backend in ("torch", "onnx"):
        engine, keep = load_engine(run, backend, Limits(), threads)
        items = engine.check(texts)
        per = {}
        for size in (1, 32):
            engine.run_batch(items[:size])
            best = math.inf
            for _ in range(3):
                start = time.perf_counter()
                for i in range(0, n, size):
                    engine.run_batch(items[i: i + size])
                best = min(best, time.perf_counter() - start)
            per[size] = 1000 * best / n
        rows.append((backend, per[1], per[32]))
        if keep is not None:
            keep.cleanup()
    torch.set_num_threads(1)
    return rows


def _median_ms(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def latencies(run: Path, repeats: int) -> list[tuple]:
    import onnxruntime as ort

    from rnnkit.data import Vocab
    from rnnkit.export import export_run, load
    from rnnkit.tasks.lm import RNNLM, LMTask, RNNLMConfig
    from rnnkit.tasks.runs import LoadedRun

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = lambda p: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])  # noqa: E731
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="rnnkit-bench-"))
    # classify forward, 20 tokens
    cls = load(run)
    out = export_run(cls, tmp / "classify")
    sess = session(out / "model.onnx")
    ids = np.random.default_rng(0).integers(2, len(cls.task.vocab), (1, 20))
    lengths = np.array([20])
    t_ids, t_len = torch.as_tensor(ids), torch.as_tensor(lengths)
    with torch.no_grad():
        torch_ms = _median_ms(lambda: cls.model.logits(t_ids, t_len), repeats)
    ort_ms = _median_ms(lambda: sess.run(["logits"], {"tokens": ids, "lengths": lengths}), repeats)
    c = cls.model.config
    rows.append((f"classify forward (bi-LSTM {c.layers} x {c.hidden}, 20 tokens, batch 1)", torch_ms, ort_ms))
    # LM step, 2 x 512 LSTM, char vocabulary of 65
    torch.manual_seed(0)
    config = RNNLMConfig(vocab_size=65, cell="lstm", layers=2, hidden=512, emb=512)
    model = RNNLM(config).eval()
    vocab = Vocab([f"c{i}" for i in range(64)] + ["<unk>"])
    lm_run = LoadedRun(model, LMTask(vocab, "char"), {"model": {"vocab_size": 65}, "task": {"name": "lm"}})
    out = export_run(lm_run, tmp / "lm")
    step = session(out / "step.onnx")
    token = np.array([3], np.int64)
    h = np.zeros((2, 1, 512), np.float32)
    state = (torch.zeros(2, 1, 512), torch.zeros(2, 1, 512))
    t_token = torch.tensor([[3]])
    with torch.no_grad():
        torch_ms = _median_ms(lambda: model.step(t_token, state), repeats)
    ort_ms = _median_ms(lambda: step.run(None, {"token": token, "h": h, "c": h}), repeats)
    rows.append(("LM step (2 x 512 LSTM, batch 1)", torch_ms, ort_ms))
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):  # torch's LSTM without oneDNN
        plain_ms = _median_ms(lambda: model.step(t_token, state), repeats)
    rows.append(("LM step, torch with torch.backends.mkldnn disabled", plain_ms, ort_ms))
    rows.append(("generation, tokens/s (200 sampled)", *gen_speed(model, step)))
    return rows


def gen_speed(model, step) -> tuple[float, float]:
    from rnnkit.generate import SamplingOptions, generate
    from rnnkit.serve.engines import sample

    options = SamplingOptions(temperature=0.8)
    start = time.perf_counter()
    generate(model, [1, 2, 3], 200, 1, options, seed=0)
    torch_tps = 200 / (time.perf_counter() - start)
    rng = np.random.default_rng(0)
    state = {"h": np.zeros((2, 1, 512), np.float32), "c": np.zeros((2, 1, 512), np.float32)}
    token = 3
    start = time.perf_counter()
    for _ in range(200):
        logits, h, c = step.run(None, {"token": np.array([token], np.int64), **state})
        state = {"h": h, "c": c}
        token = sample(logits[0], options, rng)
    return torch_tps, 200 / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per (backend, batching, clients) run")
    p.add_argument("--repeats", type=int, default=200, help="timed calls per batch-1 latency (median)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin repeats of each load setting (median)")
    p.add_argument("--hidden", type=int, default=256, help="the classifier's hidden size (per direction)")
    p.add_argument("--layers", type=int, default=2, help="the classifier's layers")
    p.add_argument("--threads", type=int, default=1,
                   help="model threads of each server (torch and onnxruntime) and of the model-alone table; the "
                        "batch-1 latencies always use 1")
    p.add_argument("--skip-load", action="store_true", help="only the batch-1 latencies")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; servers and model-alone table {args.threads} thread(s), batch-1 latencies 1; "
          f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        run = make_run(Path(tmp), args.hidden, args.layers)
        print(f"classifier: bi-LSTM, {args.layers} x {args.hidden} per direction, emb 128, texts of 5-30 tokens")
        if not args.skip_load:
            rows = load_tests(run, args.requests, args.rounds, args.threads)
            print("\n| backend | serving | clients | req/s | p50 ms | p95 ms | p99 ms | errors |")
            print("|---|---|---:|---:|---:|---:|---:|---:|")
            for backend, mode, clients, r in rows:
                print(f"| {backend} | {mode} | {clients} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                      f"{r['p99']:.1f} | {r['errors']} |")
            by = {(b, m, c): r for b, m, c, r in rows}
            for backend in ("torch", "onnx"):
                gain = by[(backend, "micro-batch 32", 32)]["rps"] / by[(backend, "one at a time", 32)]["rps"]
                tail = by[(backend, "micro-batch 32", 8)]["p99"] / by[(backend, "micro-batch 32", 8)]["p50"]
                print(f"{backend}: micro-batching / one at a time at 32 clients = {gain:.2f}x; "
                      f"p99 / p50 at 8 clients = {tail:.2f}")
            print("\n| model calls alone (no HTTP) | ms / request, one at a time | in batches of 32 | ratio |")
            print("|---|---:|---:|---:|")
            for backend, one, batched in model_only(run, 320, args.threads):
                print(f"| {backend} | {one:.2f} | {batched:.2f} | {one / batched:.2f}x |")
        print("\n| batch 1 | torch eager | onnxruntime | onnxruntime / torch |")
        print("|---|---:|---:|---:|")
        for name, t, o in latencies(run, args.repeats):
            unit = "" if "tokens/s" in name else " ms"
            print(f"| {name} | {t:.3f}{unit} | {o:.3f}{unit} | {o / t:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
