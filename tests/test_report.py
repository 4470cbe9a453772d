"""rnnkit.report: the learning-rate hints on curves of known shape, the page's content, and the page in a real
browser (headless Chromium loads report.html from disk, every image loads, a screenshot is taken)."""
import base64
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _toy import build

from rnnkit.cli import main
from rnnkit.lab import LabDataConfig, LabModelConfig, fit
from rnnkit.report import build_report, lr_hint
from rnnkit.train import TrainConfig, Trainer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small lab run with every diagnostic, an attention map and predictions: what a report shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = tmp_path_factory.mktemp("report") / "run"
    data = LabDataConfig("adding", length=8, batch_size=16, batches_per_epoch=10, valid_size=32, test_size=32)
    train = TrainConfig(epochs=2, optimizer="adam", lr=1e-2, clip=0.05, device="cpu", progress=False,
                        tensorboard=False, log_every=5)
    fit(path, data, LabModelConfig("adding", cell="lstm", hidden=8), train, diagnostics_every=5)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.eye(4))
    fig.savefig(path / "attention_example.png")
    plt.close(fig)
    return path


def _images(page: str) -> list[bytes]:
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # self-contained
    return [base64.b64decode(s.split(",", 1)[1]) for s in sources]


def test_report_embeds_every_figure_and_section(run_dir):
    page_path = build_report(run_dir)
    assert page_path == run_dir / "report.html"
    page = page_path.read_text(encoding="utf-8")
    images = _images(page)
    assert images and all(img.startswith(PNG) for img in images)
    written = sorted((run_dir / "report").glob("*.png"))
    assert len(images) == len(written) + 1  # every figure written next to the page, plus the attention map
    for title in ("Loss", "Learning-rate hint", "Gradient flow through time", "Gates", "Recurrent matrices",
                  "Gradient norm and clipping", "Attention", "predictions.txt", "baseline mse"):
        assert title in page, title
    names = {p.name for p in written}
    assert {"loss.png", "grad_flow.rnn.l0.dL_dh.png", "grad_flow.rnn.l0.jacobian.png", "gates_saturated.png",
            "spectral_radius.png", "spectral_sigma_max.png", "clipping.png"} <= names


def test_report_of_a_run_without_diagnostics_has_only_what_exists(tmp_path):
    data = LabDataConfig("sum", length=4, batch_size=8, batches_per_epoch=3, valid_size=8, test_size=8)
    train = TrainConfig(epochs=1, device="cpu", progress=False, tensorboard=False)
    fit(tmp_path, data, LabModelConfig("sum", cell="rnn-tanh", hidden=4), train)
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "Loss" in page and "Gradient flow" not in page and "Attention" not in page
    assert len(_images(page)) == 1


@pytest.mark.parametrize("curve, verdict", [
    (2.0 * np.exp(-np.arange(200) / 20) + 0.1, "ok"),  # fast, then flattening
    (2.0 - 0.005 * np.arange(200), "linear"),  # a straight line: raise the rate
    (2.0 - 0.002 * np.arange(200) + 0.3 * (-1.0) ** np.arange(200), "jagged"),  # up and down: lower the rate
    (np.full(200, 0.1667) + 1e-4 * np.sin(np.arange(200)), "flat"),  # stuck at the adding baseline
    ([1.0, 0.9, 0.8], "short"),
])
def test_learning_rate_hints(curve, verdict):
    assert lr_hint(curve, bins=200) == verdict


def test_jagged_decreasing_curve_reads_jagged_and_binning_removes_minibatch_noise():
    rng = np.random.default_rng(0)
    t = np.arange(2000)
    smooth = 2.0 * np.exp(-t / 300) + 0.2
    assert lr_hint(smooth + 0.3 * rng.standard_normal(2000), bins=2000) == "jagged"
    assert lr_hint(smooth + 0.3 * rng.standard_normal(2000), bins=50) == "ok"  # averaged: the trend shows


def test_cli_report(run_dir, capsys, tmp_path):
    assert main(["report", str(run_dir), "--output", str(tmp_path / "page.html")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'page.html'}"
    assert (tmp_path / "page" / "loss.png").read_bytes().startswith(PNG)
    (tmp_path / "empty").mkdir()
    for bad, message in ((tmp_path / "missing", "run directory not found"),
                         (tmp_path / "empty", "expected metrics.jsonl or config.json")):
        assert main(["report", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium "
                    "chromium-driver; `make test` installs them where apt is available)")
def test_report_in_headless_chromium(run_dir, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    page = build_report(run_dir)
    expected = len(_images(page.read_text(encoding="utf-8")))
    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver_path = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    assert Path(driver_path).is_file(), "Chromium is installed, chromedriver is not: apt-get install chromium-driver"
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.get(page.resolve().as_uri())
        assert driver.title.startswith("rnnkit report")
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1);")
        assert len(widths) == expected and all(w > 0 for w in widths), widths
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    data = Path(shot).read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000  # a real rendering, not an empty page


# ---- diagnostics for any task: a classifier trained with --diagnostics-every through the CLI ----------------

def _rule_rows(n, seed):
    """label = whether "a" comes before "b" among filler tokens (as tests/test_classify.py)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice("cdefgh") for _ in range(rng.randint(3, 8))]
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = "a", "b"
        rows.append(f"{' '.join(words)}\t{'before' if i < j else 'after'}\n")
    return "".join(rows)


def _train_classify(tmp, *extra) -> Path:
    (tmp / "train.tsv").write_text(_rule_rows(96, 0), encoding="utf-8")
    (tmp / "valid.tsv").write_text(_rule_rows(24, 1), encoding="utf-8")
    out = tmp / "run"
    code = main(["train", "classify", "--data", str(tmp / "train.tsv"), "--valid", str(tmp / "valid.tsv"),
                 "--hidden", "6", "--emb", "4", "--epochs", "2", "--batch-size", "16", "--out", str(out),
                 "--device", "cpu", "--quiet", *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    return _train_classify(tmp_path_factory.mktemp("classify"), "--diagnostics-every", "3")


def _row(name, value) -> str:
    return f"<tr><th>{name}</th><td>{value:.5g}</td></tr>"


def test_a_classifier_trained_with_diagnostics_every_gets_every_section_with_its_values(classify_run):
    records = [json.loads(line) for line in (classify_run / "metrics.jsonl").read_text().splitlines()]
    page = build_report(classify_run).read_text(encoding="utf-8")
    for title in ("Gradient flow through time", "Gates", "Recurrent matrices", "Gradient norm and clipping"):
        assert f"<h2>{title}</h2>" in page, title
    steps = max(r["step"] for r in records if r["split"] == "train")  # 6 batches x 2 epochs
    probes = [r for r in records if r.get("kind") == "probe"]
    assert steps == 12 and [r["step"] for r in probes] == [1, 3, 6, 9, 12]  # the Trainer's cadence
    last = probes[-1]["diagnostics"]
    gates = [k for k in last if k.startswith("gates.")]
    assert gates and all(_row(k.removeprefix("gates."), last[k]) in page for k in gates)
    flows = [k for k in last if k.endswith(".dL_dh")]
    assert any("_reverse" in k for k in flows)  # the classifier is bidirectional: both directions probed
    for k in flows:
        assert f"<tr><th>{k}: k=1 / k=T</th><td>{last[k][0]:.5g} / {last[k][-1]:.5g}</td></tr>" in page
    spectra = [r for r in records if r.get("kind") == "spectra"][-1]["diagnostics"]
    assert spectra and all(_row(k.removeprefix("spectral."), v) in page for k, v in spectra.items())
    updates = [r["diagnostics"] for r in records if r.get("kind") == "updates"]
    clipped = [c for u in updates for c in u["updates.clipped"]]
    assert [s for u in updates for s in u["updates.step"]] == list(range(1, steps + 1))  # every update, once
    assert _row("updates", len(clipped)) in page and _row("clip rate", sum(clipped) / len(clipped)) in page
    assert "gradient flow through time: not recorded" not in page
    assert "<li>attention maps: none" in page  # the one absent section of this run, and why


def test_a_run_without_diagnostics_says_which_sections_are_absent_and_how_to_get_them(tmp_path):
    page = build_report(_train_classify(tmp_path)).read_text(encoding="utf-8")
    assert "<h2>Not in this report</h2>" in page and "<h2>Gates</h2>" not in page
    for name in ("gradient flow through time", "gates", "recurrent matrices", "gradient norm and clipping"):
        assert f"<li>{name}: not recorded — train with --diagnostics-every N" in page, name


def test_a_model_without_rnnkit_layers_gets_a_note_not_an_error_and_the_report_says_why(tmp_path):
    model, task, train, valid = build(seed=0)  # torch.nn.LSTM inside
    config = TrainConfig(epochs=1, device="cpu", progress=False, tensorboard=False, diagnostics_every=4)
    Trainer(model, task, train, valid, config, tmp_path).fit()
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "<li>gradient flow through time: not recorded — ToyLM has no rnnkit Recurrent layer</li>" in page
    assert "<li>gates: not recorded — ToyLM has no rnnkit Recurrent layer</li>" in page
    assert "<h2>Recurrent matrices</h2>" in page and "rnn.weight_hh_l0.f.radius" in page  # spectra: any weight_hh
    assert "<h2>Gradient norm and clipping</h2>" in page


def test_an_elman_rnn_has_no_gates_and_the_report_says_so(tmp_path):
    data = LabDataConfig("sum", length=4, batch_size=8, batches_per_epoch=3, valid_size=8, test_size=8)
    train = TrainConfig(epochs=1, device="cpu", progress=False, tensorboard=False, diagnostics_every=2)
    fit(tmp_path, data, LabModelConfig("sum", cell="rnn-tanh", hidden=4), train)
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "<h2>Gradient flow through time</h2>" in page
    assert "<li>gates: none — the recurrent cells have no gates (Elman RNNs)</li>" in page


# ---- metrics.jsonl that is not what the Trainer writes: one line, exit 2 ---------------------------------------

GOOD = '{"epoch": 1, "step": 2, "split": "train", "time": 0.5, "metrics": {"loss": 1.0}}'


@pytest.mark.parametrize("line, message", [
    ('{"split": "train", "metrics": {"loss": 1.0}}', 'expected "step": a non-negative integer, found no "step"'),
    ('{"step": "3", "split": "train", "metrics": {}}', 'expected "step": a non-negative integer, found "3" (string)'),
    ('{"step": -1, "split": "train", "metrics": {}}', 'expected "step": a non-negative integer, found -1 (number)'),
    ('{"step": true, "split": "train", "metrics": {}}', 'expected "step": a non-negative integer, found true'),
    ('{"step": 3, "metrics": {"loss": 1.0}}', 'expected "split": a string, found no "split"'),
    ('{"step": 3, "split": "valid"}', 'expected "metrics": an object of numbers, found no "metrics"'),
    ('{"step": 3, "split": "valid", "metrics": [1.0]}', 'expected "metrics": an object of numbers, found [1.0] (list)'),
    ('{"step": 3, "split": "valid", "metrics": {"loss": "low"}}', 'expected "metrics": an object of numbers'),
    ('{"step": 3, "split": "train", "time": "now", "metrics": {}}', 'expected "time": a number, found "now"'),
    ('[1, 2]', "expected a JSON object, found [1, 2] (list)"),
    ('{"step": 3, "split": "train", "metrics": {"loss": 1.0}', "expected a JSON record, found invalid JSON"),
    ('{"step": 3, "split": "diagnostics", "kind": "probe", "diagnostics": {"gates.x.mean": [1, "a"]}}',
     'expected "diagnostics"."gates.x.mean": a number or a list of numbers'),
    ('{"step": 3, "split": "diagnostics", "kind": "updates", "diagnostics": {"updates.step": [1, 2], '
     '"updates.loss": [1.0], "updates.grad_norm": [1.0], "updates.grad_norm_clipped": [1.0], "updates.clipped": [0],'
     ' "updates.clip_rate": 0.0}}', "expected the updates.* lists to have one length, found lengths [1, 2]"),
    ('{"step": 3, "split": "diagnostics", "kind": "updates", "diagnostics": {}}',
     'expected "diagnostics"."updates.step": a list (kind "updates"), found nothing'),
])
def test_a_bad_metrics_line_is_one_error_naming_file_line_expected_and_found(tmp_path, capsys, line, message):
    (tmp_path / "metrics.jsonl").write_text(f"{GOOD}\n{line}\n{GOOD}\n", encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{tmp_path / 'metrics.jsonl'}:2: {message}" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "report.html").exists()


def test_an_empty_or_missing_metrics_jsonl_is_one_error_and_a_torn_last_line_is_tolerated(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"task": {"name": "lm"}}', encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    assert "metrics.jsonl: expected the run's training log (one JSON record per line), found no file" in \
        capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text("\n\n", encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    assert "metrics.jsonl:1: expected JSON records (one per line), found an empty file" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text(f'{GOOD}\n{{"step": 3, "spl', encoding="utf-8")  # killed mid-write
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()
