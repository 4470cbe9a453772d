"""rnnkit serve: real HTTP round trips (uvicorn on 127.0.0.1, or FastAPI's TestClient) against the library's own
predictions, both backends; micro-batching merges concurrent requests without changing any answer; limits and
malformed input answer JSON 413/422/408/404, never a 500 or a traceback; the CLI binds 127.0.0.1."""
import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx  # the serve extra (make test installs it)
import numpy as np
import pytest
import torch
import uvicorn
from _cli_errors import one_error_line
from fastapi.testclient import TestClient
from test_export import make_classify, make_forecast, make_lm, make_seq2seq, make_tag

from rnnkit.export import load
from rnnkit.generate import SamplingOptions
from rnnkit.serve import Limits, create_app
from rnnkit.tasks import classify, decode, lm, tag


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-runs")
    return {"classify": make_classify(tmp, bidirectional=True), "tag": make_tag(tmp), "forecast": make_forecast(tmp),
            "lm": make_lm(tmp), "seq2seq": make_seq2seq(tmp)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app):
    """uvicorn serving APP on 127.0.0.1 in a thread; yields the base URL; stops within seconds."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


TEXTS = ["w1 w2 w3", "w4", "w1 w5 w6 w7 w8 w9 w10", "w11 nope w2"]


# ---- answers == the library's own -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_classify_and_tag_equal_the_library(runs, backend):
    run = load(runs["classify"])
    with TestClient(create_app(runs["classify"], backend)) as client:
        r = client.post("/v1/predict", json={"inputs": TEXTS})
    assert r.status_code == 200
    probs = classify.predict_proba(run, [t.split() for t in TEXTS]).numpy()
    for out, p in zip(r.json()["outputs"], probs):
        np.testing.assert_allclose([out["probs"][k] for k in run.task.labels], p, atol=1e-5)
        assert out["label"] == run.task.labels[int(p.argmax())]
    run = load(runs["tag"])
    with TestClient(create_app(runs["tag"], backend)) as client:
        r = client.post("/v1/predict", json={"inputs": TEXTS})
    assert [o["tags"] for o in r.json()["outputs"]] == tag.predict(run, [t.split() for t in TEXTS])


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_forecast_with_band(runs, backend):
    from rnnkit.data.series import read_series
    from rnnkit.tasks import forecast

    run = load(runs["forecast"])
    series = read_series(run.data.path, "y", ["x"])
    history = series.values[:40].tolist()
    with TestClient(create_app(runs["forecast"], backend)) as client:
        out = client.post("/v1/predict", json={"inputs": [history]}).json()["outputs"][0]
        metrics = client.get("/v1/model").json()["metrics"]
    cut = dataclasses.replace(series, times=series.times[:40], values=series.values[:40], _parsed=series._parsed[:40])
    _, ref = forecast.predict(run, cut)  # the library's prediction after row 40
    np.testing.assert_allclose(out["forecast"], ref, atol=1e-4)
    half = 1.96 * metrics["rmse"]
    np.testing.assert_allclose(np.array(out["upper"]) - np.array(out["forecast"]), half, atol=1e-9)
    np.testing.assert_allclose(np.array(out["forecast"]) - np.array(out["lower"]), half, atol=1e-9)
    assert out["history"] == [row[0] for row in history]


def test_forecast_start_and_series_equal_predict_and_the_onnx_graph(tmp_path):
    """A many-series run with a learned embedding: `start` (the season position of each history's first row)
    and `series` (its id) give model.predict's answer for the last window, at position start + T − W, with the
    id's embedding row (an unknown id, or none: index −1, the mean embedding), and the ONNX graph's answer
    for the same inputs; both backends. A wrong start or series is a 422."""
    from test_export import exported, quick, session
    from test_forecast_panel import seasonal, write_wide

    from rnnkit.tasks import forecast

    path = write_wide(tmp_path, {f"S{k}": list(seasonal(60, 10 * (k + 1), seed=k)) for k in range(3)})
    data = forecast.ForecastDataConfig(path=str(path), window=12, horizon=4, season=6, holdout="horizon",
                                       batch_size=8)
    forecast.fit(tmp_path / "run", data, {"hidden": 8, "embedding": 2}, quick(1))
    run = load(tmp_path / "run")
    assert run.task.series == ["S0", "S1", "S2"]
    rng = np.random.default_rng(1)
    histories = [rng.uniform(5, 40, (n, 1)) for n in (12, 17, 20, 15)]
    start, series = [3, 0, 5, 4], ["S1", "S2", "nope", None]
    W, index = 12, [1, 2, -1, -1]
    windows = torch.as_tensor(np.stack([h[-W:] for h in histories]), dtype=torch.float32)
    positions = torch.as_tensor([(s + len(h) - W) % 6 for s, h in zip(start, histories)])
    with torch.no_grad():
        ref = run.model.predict(windows, positions, torch.as_tensor(index)).double().numpy()
        unseen = run.model.predict(windows, positions, torch.full((4,), -1)).double().numpy()
        at_zero = run.model.predict(windows, torch.as_tensor([(len(h) - W) % 6 for h in histories]),
                                    torch.as_tensor(index)).double().numpy()
    assert np.abs(ref[:2] - unseen[:2]).max() > 1e-4 and np.abs(ref - at_zero).max() > 1e-4  # both matter
    sess = session(exported(run, tmp_path)[0] / "model.onnx")
    (graph,) = sess.run(["quantiles"], {"values": windows.numpy(), "start": positions.numpy(),
                                        "series": np.array(index, dtype=np.int64)})
    np.testing.assert_allclose(graph, ref, rtol=1e-4, atol=1e-4)
    point = run.model.config.point_index
    body = {"inputs": [h.tolist() for h in histories], "start": start, "series": series}
    for backend in ("torch", "onnx"):
        with TestClient(create_app(tmp_path / "run", backend)) as client:
            out = client.post("/v1/predict", json=body).json()["outputs"]
            default = client.post("/v1/predict", json={"inputs": body["inputs"]}).json()["outputs"]
            one = client.post("/v1/predict", json={"inputs": body["inputs"][:1], "start": 3, "series": "S1"})
            bad = [client.post("/v1/predict", json={**body, "start": [1, 2]}),
                   client.post("/v1/predict", json={**body, "start": -1}),
                   client.post("/v1/predict", json={**body, "series": {"id": 1}})]
        np.testing.assert_allclose([o["forecast"] for o in out], ref[..., point], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose([o["forecast"] for o in out], graph[..., point], rtol=1e-4, atol=1e-4)
        no_options = [(len(h) - W) % 6 for h in histories]
        with torch.no_grad():
            ref0 = run.model.predict(windows, torch.as_tensor(no_options), torch.full((4,), -1)).numpy()
        np.testing.assert_allclose([o["forecast"] for o in default], ref0[..., point], rtol=1e-4, atol=1e-4)
        # float32, and a batch of 1 and one of 4 may take different GEMM kernels: a few ulps (1 ulp at 23 is 2e-6)
        assert one.json()["outputs"][0]["forecast"] == pytest.approx(out[0]["forecast"], rel=1e-5, abs=1e-5)
        assert [r.status_code for r in bad] == [422] * 3
        assert "start: expected one value per input (4), found 2" in bad[0].json()["error"]
        assert "start" in bad[1].json()["error"] and bad[2].json()["error"].startswith("series")
    with TestClient(create_app(make_classify(tmp_path), "torch")) as client:
        r = client.post("/v1/predict", json={"inputs": ["w1"], "start": 2})
    assert r.status_code == 422 and r.json()["error"].startswith("start: only a forecast run takes start")


def test_predict_tree_equals_predict_trees(tmp_path):
    """tree runs (torch backend): every node's predicted label, as rnnkit.tasks.tree.predict_trees gives it."""
    from rnnkit.data.trees import parse_tree
    from rnnkit.tasks import tree
    from rnnkit.train import TrainConfig

    trees = ["(3 (2 w1) (4 w2))", "(1 (0 w3) (2 (2 w1) (1 w4)))", "(4 (4 w2) (3 w5))", "(0 (1 w4) (0 w3))"] * 10
    (tmp_path / "trees.txt").write_text("\n".join(trees) + "\n")
    data = tree.TreeDataConfig(train=str(tmp_path / "trees.txt"), valid=str(tmp_path / "trees.txt"), batch_size=10)
    train = TrainConfig(epochs=1, optimizer="adam", device="cpu", progress=False, tensorboard=False)
    tree.fit(tmp_path / "tree", data, {"cell": "child-sum", "emb": 8, "hidden": 8}, train)
    inputs = ["(0 (0 w1) (0 (0 w2) (0 unseen)))", "(0 w5)"]
    with TestClient(create_app(tmp_path / "tree", "torch")) as client:
        out = client.post("/v1/predict", json={"inputs": inputs}).json()["outputs"]
        bad = client.post("/v1/predict", json={"inputs": ["(3 (2 a"]})
    ref = tree.predict_trees(load(tmp_path / "tree"), [parse_tree(t, num_classes=None) for t in inputs])
    assert [o["tree"] for o in out] == [str(t) for t in ref] and [o["label"] for o in out] == [t.label for t in ref]
    assert bad.status_code == 422 and "inputs[0]" in bad.json()["error"]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_translate_with_attention_equals_decode(runs, backend):
    run = load(runs["seq2seq"])
    lines = ["w1 w2 w3", "w4 w5", "w6 w7 w8 w9 w1"]
    with TestClient(create_app(runs["seq2seq"], backend)) as client:
        plain = client.post("/v1/translate", json={"inputs": lines, "beam": 3}).json()["outputs"]
        full = client.post("/v1/translate", json={"inputs": lines, "beam": 3, "attention": True}).json()["outputs"]
    ref = decode.translate(run, lines, beam=3)
    for p, f, r in zip(plain, full, ref):
        assert p["text"] == f["text"] == r.text and "attention" not in p
        assert f["score"] == pytest.approx(r.score, abs=1e-4)
        np.testing.assert_allclose(f["attention"], r.attention, atol=1e-5)


def test_generate_streams_the_tokens_sample_text_draws(runs):
    """torch backend, same seed: the server-sent tokens are exactly rnnkit.tasks.lm.sample_text's."""
    run = load(runs["lm"])
    options = {"temperature": 0.8, "top_k": 5, "top_p": 0.9}
    ref = lm.sample_text(run, "ab", 30, 1, SamplingOptions(**options), seed=7)[0]
    with running(create_app(runs["lm"], "torch")) as url:
        with httpx.stream("POST", f"{url}/v1/generate", json={"prime": "ab", "length": 30, "seed": 7, **options},
                          timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [e for e in r.read().decode().split("\n\n") if e]
    tokens = [json.loads(e.removeprefix("data: "))["token"] for e in events[:-1]]
    done = events[-1].split("\n")
    assert done[0] == "event: done" and json.loads(done[1].removeprefix("data: "))["text"] == ref
    assert "ab" + "".join(tokens) == ref and len(tokens) == 30


@pytest.mark.parametrize("kind", ["lm", "nplm"])
def test_generate_onnx_backend_greedy_equals_torch(runs, tmp_path, kind):
    run_dir = runs["lm"] if kind == "lm" else make_lm(tmp_path, nplm=True)
    ref = lm.sample_text(load(run_dir), "abc", 20, 1, SamplingOptions(greedy=True))[0]
    with TestClient(create_app(run_dir, "onnx")) as client:
        r = client.post("/v1/generate", json={"prime": "abc", "length": 20, "greedy": True, "stream": False})
    assert r.json()["text"] == ref


# ---- micro-batching ---------------------------------------------------------------------------------------------
def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(runs):
    """32 concurrent one-text requests of different lengths: fewer model calls than requests, and every
    answer equals the answer to that request sent alone (padding never leaks across requests)."""
    texts = [" ".join(f"w{(i * 7 + j) % 12}" for j in range(1 + i % 9)) for i in range(32)]
    run = load(runs["classify"])
    alone = [classify.predict_proba(run, [t.split()])[0].numpy() for t in texts]
    app = create_app(runs["classify"], "onnx", Limits(max_batch=32, max_wait_ms=50))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda t: client.post("/v1/predict", json={"inputs": [t]}), texts))
        health = client.get("/v1/health").json()
    assert all(a.status_code == 200 for a in answers)
    assert health["items"] == 32 and health["batches"] < 16, health
    for a, ref in zip(answers, alone):
        probs = a.json()["outputs"][0]["probs"]
        np.testing.assert_allclose([probs[k] for k in run.task.labels], ref, atol=1e-5)


def test_batcher_waits_for_the_crowd_of_last_time_not_for_the_deadline():
    """After a batch of 4 requests, the next 4 sent together form one batch that starts when the 4th arrives,
    long before max_wait (10 s here; the test gives up after 5); a lone request never waits; requests queued
    while a batch runs all join the next one (the crowd grows)."""
    import asyncio

    from rnnkit.serve.batching import MicroBatcher

    calls = []

    def model(items):
        calls.append(list(items))
        time.sleep(0.05)  # a model call long enough for the next requests to queue up behind it
        return [x * 10 for x in items]

    async def scenario():
        batcher = MicroBatcher(model, max_batch=32, max_wait_ms=10_000)
        await batcher.start()
        try:
            alone = await asyncio.wait_for(batcher.submit([1]), 5)  # no company last time: no waiting
            first = [asyncio.create_task(batcher.submit([i])) for i in range(4)]
            await asyncio.sleep(0)  # all four queued before the worker looks
            await asyncio.wait_for(asyncio.gather(*first), 5)

            async def one(i, delay):  # the four come back a little apart, as clients do
                await asyncio.sleep(delay)
                return await batcher.submit([i])
            again = await asyncio.wait_for(asyncio.gather(*(one(i, 0.01 * i) for i in range(4))), 5)
        finally:
            await batcher.stop()
        batcher = MicroBatcher(model, max_batch=32, max_wait_ms=10_000)
        await batcher.start()
        try:
            running = asyncio.create_task(batcher.submit([100]))  # a lone request, then 6 while it runs
            await asyncio.sleep(0.01)
            crowd = [asyncio.create_task(batcher.submit([200 + i])) for i in range(6)]
            await asyncio.wait_for(asyncio.gather(running, *crowd), 5)
        finally:
            await batcher.stop()
        return alone, [f.result() for f in first], again, [f.result() for f in crowd]

    alone, first, again, crowd = asyncio.run(scenario())
    assert alone == [10] and first == [[0], [10], [20], [30]] and again == [[0], [10], [20], [30]]
    assert crowd == [[2000 + 10 * i] for i in range(6)]
    assert calls == [[1], [0, 1, 2, 3], [0, 1, 2, 3], [100], [200, 201, 202, 203, 204, 205]], calls


def test_clients_split_over_two_batches_merge_into_one():
    """Four clients are answered together while four others wait: the next batch waits for the four answered
    ones to come back (the crowd of last time: the 4 it answered + the 4 that came meanwhile) and runs all
    eight at once, instead of the 4 waiting alone and then the 4 returning alone."""
    import asyncio

    from rnnkit.serve.batching import MicroBatcher

    calls = []

    def model(items):
        calls.append(list(items))
        time.sleep(0.05)
        return [x * 10 for x in items]

    async def scenario():
        batcher = MicroBatcher(model, max_batch=32, max_wait_ms=10_000)
        await batcher.start()

        async def client(i, times):
            return [await batcher.submit([i]) for _ in range(times)]
        try:
            first = [asyncio.create_task(client(i, 2)) for i in range(4)]  # answered together, then send again
            await asyncio.sleep(0.01)  # their first batch is running
            second = [asyncio.create_task(client(10 + i, 1)) for i in range(4)]  # queue up behind it
            return await asyncio.wait_for(asyncio.gather(*first, *second), 5)
        finally:
            await batcher.stop()

    answers = asyncio.run(scenario())
    assert answers == [[[10 * i]] * 2 for i in range(4)] + [[[100 + 10 * i]] for i in range(4)]
    assert calls == [[0, 1, 2, 3], [10, 11, 12, 13, 0, 1, 2, 3]], calls


# ---- limits and errors ------------------------------------------------------------------------------------------
def test_limits_and_malformed_input_are_json_4xx_never_500(runs):
    limits = Limits(max_body_bytes=2000, max_inputs=3, max_tokens=5)
    with TestClient(create_app(runs["classify"], "torch", limits), raise_server_exceptions=False) as client:
        cases = [
            (client.post("/v1/predict", content=b'{"inputs": ["w1"', headers={"content-type": "application/json"}),
             422, "JSON"),
            (client.post("/v1/predict", json={"inputs": ["w1 " * 1000]}), 413, "limit"),
            (client.post("/v1/predict", json={"inputs": ["w1"] * 4}), 422, "limit of 3"),
            (client.post("/v1/predict", json={"inputs": ["w1 " * 6]}), 422, "limit of 5"),
            (client.post("/v1/predict", json={"inputs": [""]}), 422, "empty"),
            (client.post("/v1/predict", json={"inputs": [3]}), 422, "inputs[0]"),
            (client.post("/v1/predict", json={"texts": ["w1"]}), 422, "texts"),
            (client.post("/v1/predict", json={"inputs": []}), 422, "inputs"),
            (client.post("/v1/generate", json={"prime": "a"}), 404, "/v1/predict"),
        ]
        for r, status, fragment in cases:
            body = r.json()
            assert r.status_code == status and body["status"] == status, (r.status_code, body)
            assert fragment in body["error"] and "Traceback" not in r.text, body
    with TestClient(create_app(runs["lm"], "torch", Limits(max_generate=50))) as client:
        r = client.post("/v1/generate", json={"length": 51})
        assert r.status_code == 422 and "limit of 50" in r.json()["error"]
        r = client.post("/v1/generate", json={"length": 5, "temperature": 0})
        assert r.status_code == 422 and "temperature" in r.json()["error"]


BAD_BODIES = [b'{"texts": ["w1"]}', b'{"inputs": []}', b'{"inputs": "w1"}', b'[]', b'3', b'{}', b'null',
              b'{"inputs": ["w1"], "beam": 2}', b'{"inputs": ["w1"], "beam": 0}', b'{"inputs": ["w1"], "beam": "x"}',
              b'{"inputs": ["w1"], "attention": "maybe"}', b'{"inputs": ["w1"], "extra": 1, "more": 2}']


def test_lean_path_errors_are_the_ones_fastapi_validation_gives(runs):
    """The batched endpoints validate their bodies themselves (rnnkit.serve.asgi): each wrong body gets exactly
    the 422 message of FastAPI's own validation of the same pydantic model (a route taking it as its body)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from rnnkit.serve import schemas
    from rnnkit.serve.asgi import validation_message

    reference = FastAPI()

    @reference.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        return JSONResponse({"error": validation_message(exc.errors()), "status": 422}, status_code=422)

    @reference.post("/v1/predict")
    async def predict(body: schemas.PredictRequest):
        return {}

    @reference.post("/v1/translate")
    async def translate(body: schemas.TranslateRequest):
        return {}

    json_type = {"content-type": "application/json"}
    with TestClient(reference) as ref, TestClient(create_app(runs["seq2seq"], "torch")) as s2s, \
            TestClient(create_app(runs["classify"], "onnx")) as cls:
        for path, client in (("/v1/predict", cls), ("/v1/translate", s2s)):
            for body in BAD_BODIES:
                expected = ref.post(path, content=body, headers=json_type)
                if expected.status_code == 200:  # beam/attention fields: fine for translate, unknown for predict
                    continue
                got = client.post(path, content=body, headers=json_type)
                assert expected.status_code == got.status_code == 422, (path, body)
                assert got.json() == expected.json(), (path, body)
        malformed = cls.post("/v1/predict", content=b'{"inputs": ["w1"', headers=json_type).json()
    assert malformed["status"] == 422 and malformed["error"].startswith("body: invalid JSON: Expecting "), malformed


def test_lean_path_and_the_fastapi_route_answer_alike(runs):
    """The same bodies through rnnkit.serve.asgi and through FastAPI's stack (app.hot emptied): the same status
    and the same JSON, good and bad; /docs describes both routes' bodies."""
    bodies = [{"inputs": TEXTS}, {"inputs": ["w1 " * 9]}, {"inputs": []}, {"texts": ["w1"]}, {"inputs": [3]}]
    answers = {}
    for lean in (True, False):
        app = create_app(runs["classify"], "torch", Limits(max_tokens=8, max_body_bytes=500))
        if not lean:
            app.hot = {}
        with TestClient(app) as client:
            answers[lean] = [(r.status_code, r.json()) for r in
                             [client.post("/v1/predict", json=b) for b in bodies]
                             + [client.post("/v1/predict", json={"inputs": ["w1 " * 200]})]]
            schema = client.get("/openapi.json").json()
    assert answers[True] == answers[False]
    assert [status for status, _ in answers[True]] == [200, 422, 422, 422, 422, 413]
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["inputs"] and body["additionalProperties"] is False


def test_a_streamed_body_over_the_limit_is_413_and_the_server_keeps_serving(runs):
    """A chunked body (no Content-Length) is counted as it arrives: 413 once past the limit, on the lean path
    (/v1/predict) and through FastAPI's stack (/v1/generate)."""
    app = create_app(runs["classify"], "torch", Limits(max_body_bytes=1000))

    def chunks():
        yield b'{"inputs": ["'
        for _ in range(20):
            yield b"w1 " * 30
        yield b'"]}'

    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json() == {"error": "request body over the limit of 1000 bytes",
                                                     "status": 413}
        assert client.post("/v1/predict", json={"inputs": ["w1 w2"]}).status_code == 200
    with running(create_app(runs["lm"], "torch", Limits(max_body_bytes=1000))) as url:  # through FastAPI's stack
        r = httpx.post(f"{url}/v1/generate", content=chunks(), headers={"content-type": "application/json"},
                       timeout=30)
    assert r.status_code == 413 and r.json()["error"] == "request body over the limit of 1000 bytes"


def test_the_benchmark_client_counts_what_httpx_sees(runs):
    """bench/serve.py's raw-socket load client, on a real server: as many errors as httpx gets non-200 answers
    for the same requests (empty texts: 422), every request answered, latencies for each."""
    import asyncio
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_serve", Path(__file__).parents[1] / "bench" / "serve.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    texts = ["w1 w2", "", "w3 w4 w5", "w6"] * 6
    with running(create_app(runs["classify"], "onnx")) as url, httpx.Client(base_url=url, timeout=30) as client:
        port = int(url.rsplit(":", 1)[1])
        result = asyncio.run(bench.load(port, texts, 4))
        statuses = [client.post("/v1/predict", json={"inputs": [t]}).status_code for t in texts]
    assert statuses.count(422) == 6 and statuses.count(200) == 18
    assert result["errors"] == 6 and result["rps"] > 0 and result["p50"] <= result["p99"]


def test_length_groups_are_the_cheapest_split_of_the_sorted_batch():
    """Every index exactly once, groups sorted by length, and the total cost is the least over all splits of
    the length-sorted batch into contiguous groups (enumerated)."""
    import itertools

    from rnnkit.serve.engines import length_groups

    def cost(groups, lengths):
        return sum(max(lengths[i] for i in g) * (len(g) + 1.0) + 20.0 for g in groups)

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 9, 12):
        lengths = rng.integers(1, 40, n).tolist()
        groups = length_groups(lengths)
        assert sorted(i for g in groups for i in g) == list(range(n))
        flat = [lengths[i] for g in groups for i in g]
        assert flat == sorted(lengths)
        order = sorted(range(n), key=lambda i: lengths[i])
        best = min(cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, n))], lengths)
                   for k in range(n) for cuts in itertools.combinations(range(1, n), k))
        assert cost(groups, lengths) == pytest.approx(best)
    assert length_groups([5] * 100, largest=64) and max(len(g) for g in length_groups([5] * 100)) <= 64


def test_request_timeout_is_408(runs):
    """A model call slower than the timeout (here: made to sleep 0.5 s) -> 408; the server keeps serving."""
    app = create_app(runs["seq2seq"], "torch", Limits(timeout_s=0.2))
    fast = app.state.batcher.fn
    app.state.batcher.fn = lambda items: (time.sleep(0.5), fast(items))[1]
    with TestClient(app) as client:
        r = client.post("/v1/translate", json={"inputs": ["w1 w2"]})
        assert r.status_code == 408 and r.json() == {"error": "request timed out after 0.2 s", "status": 408}
        app.state.batcher.fn = fast
        time.sleep(0.5)  # the slow call, still running in the model thread, ends first
        assert client.post("/v1/translate", json={"inputs": ["w1 w2"]}).status_code == 200
    app = create_app(runs["lm"], "torch", Limits(timeout_s=0.2))  # generation (not streamed) over its time
    engine = app.state.engine
    quick_tokens = engine.generate
    engine.generate = lambda *a: (time.sleep(0.05) or t for t in quick_tokens(*a))
    with TestClient(app) as client:
        r = client.post("/v1/generate", json={"prime": "a", "length": 50, "stream": False})
    assert r.status_code == 408 and r.json()["error"] == "request timed out after 0.2 s"


def test_model_and_health(runs):
    with TestClient(create_app(runs["tag"], "onnx")) as client:
        info = client.get("/v1/model").json()
        health = client.get("/v1/health").json()
        docs = client.get("/docs")
    assert info["task"] == "tag" and info["backend"] == "onnx" and info["endpoint"] == "/v1/predict"
    assert info["config"]["model"]["crf"] is True and info["metrics"]["epoch"] == 1
    assert "accuracy" in info["metrics"] and info["tags"] == load(runs["tag"]).task.tags.itos
    assert health == {"status": "ok", "task": "tag", "backend": "onnx", "batches": 0, "items": 0}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@contextlib.contextmanager
def cli_server(run, *options: str, endpoint: str = "/v1/health", wait_s: float = 60):
    """`rnnkit serve RUN --port P OPTIONS` in a subprocess; yields (process, port, the first JSON answer of
    GET endpoint); stopped on exit."""
    port = free_port()
    code = f"from rnnkit.cli import main; main(['serve', {str(run)!r}, '--port', '{port}', *{list(options)!r}])"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, answer = time.monotonic() + wait_s, None
        while answer is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}{endpoint}", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, proc.stdout.read1().decode() if proc.stdout else ""
        yield proc, port, answer
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_serves_on_127_0_0_1_by_default(runs):
    with cli_server(runs["classify"]) as (proc, port, answer):
        assert answer["task"] == "classify"
        listening = [c for c in _listening(proc.pid) if c.endswith(f":{port}")]
        assert listening and all(c.startswith("127.0.0.1:") for c in listening), listening


def test_cli_workers_share_the_cpus_and_each_answers_like_the_library(runs):
    """--workers 2 --threads 1: two uvicorn worker processes, each with one torch thread (/v1/model reads the
    process's own torch.get_num_threads()), and the answers are the library's."""
    with cli_server(runs["classify"], "--workers", "2", "--threads", "1", endpoint="/v1/model",
                    wait_s=120) as (proc, port, info):
        assert info["threads"] == 1 and info["backend"] == "torch"
        r = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": TEXTS}, timeout=30)
        run = load(runs["classify"])
        probs = classify.predict_proba(run, [t.split() for t in TEXTS]).numpy()
        got = [[o["probs"][k] for k in run.task.labels] for o in r.json()["outputs"]]
        np.testing.assert_allclose(got, probs, atol=1e-5)
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:  # the second worker may still load
            time.sleep(0.2)
        assert len(_children(proc.pid)) >= 2


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid (from /proc; Linux)."""
    import os

    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # gone between the listing and the read
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def test_onnx_threads_are_onnxruntimes_and_change_no_answer(runs):
    from rnnkit.serve.app import load_engine

    answers = {}
    for threads in (1, 2):
        engine, keep = load_engine(runs["classify"], "onnx", Limits(), threads)
        try:
            assert engine.sessions["model"].get_session_options().intra_op_num_threads == threads
            assert engine.threads() == threads
            outputs = engine.run_batch(engine.check(TEXTS))
            answers[threads] = [[o["probs"][k] for k in sorted(o["probs"])] for o in outputs]
        finally:
            keep.cleanup()
    np.testing.assert_allclose(answers[2], answers[1], atol=1e-6)
    with TestClient(create_app(runs["classify"], "onnx", threads=2)) as client:
        assert client.get("/v1/model").json()["threads"] == 2


def test_default_threads_share_the_process_cpus(monkeypatch):
    import os

    from rnnkit.serve import default_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [default_threads(w) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def _listening(pid: int) -> list[str]:
    """Local addresses of pid's listening TCP sockets (from /proc; Linux)."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed between the listing and the read (the server opens and closes files)
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and inode in inodes:  # LISTEN
                ip, port = local.split(":")
                octets = [str(int(ip[i: i + 2], 16)) for i in (6, 4, 2, 0)]
                out.append(f"{'.'.join(octets)}:{int(port, 16)}")
    return out


def test_torch_backend_loads_no_pickle(runs, monkeypatch):
    """Loading a run for serving never unpickles (torch.load is not called)."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", refuse)
    with TestClient(create_app(runs["lm"], "torch")) as client:
        assert client.get("/v1/health").json()["task"] == "lm"


def test_without_the_extra_one_line_install_hint(runs, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    one_error_line(capsys, ["serve", str(runs["lm"])], "pip install 'rnnkit[serve]'")


def test_onnx_backend_of_a_tree_run_is_one_line(tmp_path, capsys):
    run = tmp_path / "tree"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": {"name": "tree"}}))
    one_error_line(capsys, ["serve", str(run), "--backend", "onnx"], "not exportable")
