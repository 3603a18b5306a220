"""The widgets render in a real JupyterLab, in Debian's Chromium (driven by Playwright).

Needs /usr/bin/chromium (``apt-get install chromium``; .ci/run installs it). No browser is
downloaded: Playwright drives the system Chromium through ``executable_path``.
"""
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("COGVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), or "
                    "deselect this test with -m 'not browser'")
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from cogviz.widgets import ImageFitter\nw = ImageFitter()\nw")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "fitter.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--allow-root", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=open(root / "lab.log", "w"), env={**os.environ, "MPLBACKEND": "Agg"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                json.load(r)
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + (root / "lab.log").read_text()[-2000:])
    yield base, token, root
    proc.terminate()
    proc.wait(timeout=20)


def test_image_fitter_renders_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/fitter.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_function("window.jupyterapp !== undefined", timeout=30_000)
        # run the cell once the kernel is up (the command waits for the session itself)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
        deadline = time.time() + 90
        while time.time() < deadline:
            # fire and forget: the command's promise settles only when the run ends
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            try:
                page.wait_for_selector(".jp-OutputArea .widget-image", timeout=15_000)
                break
            except Exception:
                continue
        page.screenshot(path=str(root / "fitter-first.png"))
        page.wait_for_function(
            "document.querySelectorAll('.jp-OutputArea .widget-image').length >= 2 && "
            "[...document.querySelectorAll('.jp-OutputArea .widget-image')].every(i => i.naturalWidth > 0)",
            timeout=60_000)
        text = page.inner_text(".jp-OutputArea")
        page.screenshot(path=str(root / "fitter.png"))
        browser.close()
    assert "Error displaying widget" not in text and "Failed to load model" not in text
    assert "cropped" in text and "Preset" in text  # the report and the controls are on the page
