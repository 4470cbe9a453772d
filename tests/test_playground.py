"""The playground page (GET /) in headless Chromium against a real server on 127.0.0.1: the page loads, a
request round-trips, the result is drawn (checked in the DOM against the API's own answer); a screenshot of
each view is kept in the test's tmp directory. Skipped only where Chromium is not installed, as test_report."""
import shutil
from pathlib import Path

import httpx
import pytest
from test_export import make_classify, make_forecast, make_lm, make_seq2seq, make_tag
from test_serve import running

from rnnkit.serve import create_app


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


pytestmark = pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (Debian: apt-get install "
                                "chromium chromium-driver; `make test` installs them where apt is available)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(arg)
    driver_path = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    assert Path(driver_path).is_file(), "Chromium is installed, chromedriver is not: apt-get install chromium-driver"
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _open(browser, url):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    WebDriverWait(browser, 20).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))
    assert browser.find_element("id", "error").text == ""


def _wait(browser, condition, what):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, 20).until(condition)
    except Exception:
        raise AssertionError(f"{what}; page error: {browser.find_element('id', 'error').text!r}") from None


def test_classify_bars_and_tag_spans(browser, tmp_path_factory, tmp_path):
    runs = tmp_path_factory.mktemp("pg-runs")
    text = "w1 w3 w5"
    with running(create_app(make_classify(runs), "onnx")) as url:
        _open(browser, url)
        box = browser.find_element("id", "classify-input")
        box.clear()
        box.send_keys(text)
        browser.find_element("id", "classify-go").click()
        rows = _wait(browser, lambda d: d.find_elements("css selector", "#classify-result .row"), "no bars drawn")
        want = httpx.post(f"{url}/v1/predict", json={"inputs": [text]}).json()["outputs"][0]["probs"]
        drawn = {r.get_attribute("data-label"): float(r.get_attribute("data-prob")) for r in rows}
        assert drawn.keys() == want.keys() and all(abs(drawn[k] - want[k]) < 1e-5 for k in want)
        for r in rows:  # each bar's width is its probability
            track = r.find_element("css selector", ".track").size["width"]
            fill = r.find_element("css selector", ".fill").size["width"]
            assert abs(fill / track - drawn[r.get_attribute("data-label")]) < 0.02
        browser.save_screenshot(str(tmp_path / "classify.png"))
    with running(create_app(make_tag(runs), "torch")) as url:
        _open(browser, url)
        box = browser.find_element("id", "tag-input")
        box.clear()
        box.send_keys("w2 w4 w9 w10")
        browser.find_element("id", "tag-go").click()
        spans = _wait(browser, lambda d: d.find_elements("css selector", "#tag-result .tok"), "no tags drawn")
        want = httpx.post(f"{url}/v1/predict", json={"inputs": ["w2 w4 w9 w10"]}).json()["outputs"][0]["tags"]
        assert [s.get_attribute("data-tag") for s in spans] == want
        words = [browser.execute_script("return arguments[0].firstChild.textContent", s) for s in spans]
        assert words == ["w2", "w4", "w9", "w10"]
        browser.save_screenshot(str(tmp_path / "tag.png"))
    assert (tmp_path / "classify.png").stat().st_size > 1000 and (tmp_path / "tag.png").stat().st_size > 1000


def test_streamed_sample_translation_heatmap_and_forecast_plot(browser, tmp_path_factory, tmp_path):
    runs = tmp_path_factory.mktemp("pg-runs2")
    with running(create_app(make_lm(runs), "torch")) as url:
        _open(browser, url)
        browser.find_element("id", "generate-prime").send_keys("ab")
        length = browser.find_element("id", "generate-length")
        length.clear()
        length.send_keys("40")
        browser.find_element("id", "generate-go").click()
        sample = browser.find_element("id", "sample")
        _wait(browser, lambda d: sample.get_attribute("data-done") == "true", "the stream did not finish")
        assert sample.get_attribute("data-tokens") == "40" and sample.text.startswith("ab")
        browser.save_screenshot(str(tmp_path / "generate.png"))
    with running(create_app(make_seq2seq(runs), "onnx")) as url:
        _open(browser, url)
        box = browser.find_element("id", "translate-input")
        box.clear()
        box.send_keys("w1 w2 w3 w4")
        browser.find_element("id", "translate-go").click()
        cells = _wait(browser, lambda d: d.find_elements("css selector", "#translate-heat td.cell"), "no heatmap")
        want = httpx.post(f"{url}/v1/translate", json={"inputs": ["w1 w2 w3 w4"], "attention": True}).json()
        want = want["outputs"][0]
        assert browser.find_element("id", "translate-text").text == want["text"]
        weights = [float(c.get_attribute("data-weight")) for c in cells]
        flat = [a for row in want["attention"] for a in row]
        assert len(weights) == len(flat) == len(want["src_tokens"]) * (len(want["tokens"]) + 1)
        assert all(abs(a - b) < 1e-5 for a, b in zip(weights, flat))
        browser.save_screenshot(str(tmp_path / "translate.png"))
    with running(create_app(make_forecast(runs), "torch")) as url:
        _open(browser, url)
        browser.find_element("id", "forecast-go").click()  # the page is prefilled with the training file's tail
        _wait(browser, lambda d: d.find_elements("css selector", "#forecast-plot #band"), "no forecast plot")
        history = browser.find_element("css selector", "#forecast-plot #history").get_attribute("points").split()
        ahead = browser.find_element("css selector", "#forecast-plot #forecast").get_attribute("points").split()
        assert len(history) == 24 and len(ahead) == 1 + 3  # 3 windows of 8 rows; joined to the last point
        assert float(ahead[-1].split(",")[0]) > float(history[-1].split(",")[0])  # drawn after the history
        browser.save_screenshot(str(tmp_path / "forecast.png"))
