"""The built smoke book in a real browser: headless Debian Chromium, served on 127.0.0.1.

Every page: no console errors, no failed requests, every image loaded. The interpolation
page: moving the slider changes the displayed frame, without a kernel. Skips when Chromium
is absent, unless CI is set (then the missing browser is a failure: .ci/run installs it).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1600"]


def _require_browser():
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[book]')")
    if missing:
        msg = (f"browser test needs {', '.join(missing)}; install Debian's packages with "
               "`apt-get install -y chromium chromium-driver` (as .ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(msg + " -- mandatory because CI is set")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def site(tmp_path_factory, smoke_models):
    from test_notebooks import build_smoke_book  # the same session-wide smoke book

    from rcdm_lib.pipeline import build_book, vendor_js

    _require_browser()
    smoke_book = build_smoke_book(tmp_path_factory)
    vendor_js()
    index = build_book(smoke_book, title="RCDM reproduction (smoke)")
    root = index.parent
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile_dir = tempfile.mkdtemp(prefix="rcdm-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in CHROME_FLAGS + [f"--user-data-dir={profile_dir}"]:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile_dir, ignore_errors=True)


def _drain(driver):
    driver.get_log("browser")
    driver.get_log("performance")


def _problems(driver) -> list[str]:
    out = []
    for e in driver.get_log("browser"):
        if e["level"] == "SEVERE":
            out.append(f"console: {e['message']}")
    for e in driver.get_log("performance"):
        msg = json.loads(e["message"])["message"]
        p = msg.get("params", {})
        if msg["method"] == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"request failed: {p.get('errorText')} ({p.get('requestId')})")
        elif msg["method"] == "Network.responseReceived" and p["response"]["status"] >= 400:
            out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
    return out


def _wait(pred, timeout=30.0, step=0.25):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


IMAGES_LOADED = """return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                          .map(i => i.src.slice(0, 80));"""
VISIBLE_FRAME = """const imgs = Array.from(document.querySelectorAll('img.widget-image'))
                    .filter(i => i.offsetParent !== null);
                   return imgs.length ? imgs[0].src : null;"""


def test_every_page_loads_cleanly(site, browser):
    base, root = site
    pages = sorted(p.relative_to(root).as_posix() for p in root.glob("*.html"))
    assert {"intro.html", "claims.html", "03_interpolation.html"} <= set(pages), pages
    _drain(browser)
    bad = {}
    for page in pages:
        browser.get(f"{base}/{page}")
        _wait(lambda: browser.execute_script("return document.readyState") == "complete")
        unloaded = _wait(lambda: not browser.execute_script(IMAGES_LOADED), timeout=15) or \
            browser.execute_script(IMAGES_LOADED)
        time.sleep(0.5)  # late scripts (MathJax, widget manager) report their errors
        problems = _problems(browser)
        if unloaded and unloaded is not True:
            problems.append(f"images not loaded: {unloaded}")
        if problems:
            bad[page] = problems
    assert not bad, f"pages with problems: {json.dumps(bad, indent=1)}"


def test_chapter_figures_are_images(site, browser):
    base, _ = site
    for page in ("01_conditional_samples.html", "02_out_of_distribution.html", "03_interpolation.html"):
        browser.get(f"{base}/{page}")
        n = _wait(lambda: browser.execute_script(
            "return Array.from(document.images).filter(i => i.src.includes('_images/') && i.naturalWidth > 0).length"))
        assert n >= 1, f"{page} shows no figure image"


def test_interpolation_slider_changes_the_frame(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _ = site
    browser.get(f"{base}/03_interpolation.html")
    first = _wait(lambda: browser.execute_script(VISIBLE_FRAME), timeout=45)
    assert first, "the interpolation widget did not render (no visible frame of the image Stack)"
    handle = browser.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle, .jupyter-widget-slider .noUi-handle")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    second = _wait(lambda: (lambda s: s if s and s != first else None)(browser.execute_script(VISIBLE_FRAME)),
                   timeout=10)
    assert second and second != first, "moving the slider did not change the displayed image"
    problems = _problems(browser)
    assert not problems, problems
