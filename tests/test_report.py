"""rnnkit.report: the learning-rate hints on curves of known shape, the page's content, and the page in a real
browser (headless Chromium loads report.html from disk, every image loads, a screenshot is taken)."""
import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.lab import LabDataConfig, LabModelConfig, fit
from rnnkit.report import build_report, lr_hint
from rnnkit.train import TrainConfig

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
