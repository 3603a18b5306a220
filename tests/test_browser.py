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
    nb.cells = [nbformat.v4.new_code_cell("from cogviz.widgets import GenerateUI\n"
                                          "ui = GenerateUI(prompt='a red circle moves left', steps=4)\nui"),
                nbformat.v4.new_code_cell("ui.run_button.click()\nprint('frames', ui.generation.frames.shape)")]
    nbformat.write(nb, root / "generate.ipynb")
    nb.cells = [nbformat.v4.new_code_cell(
        "import cogviz\nfrom cogviz.widgets import LatentExplorer\nfrom cogviz.samples import sample_path\n"
        "ex = LatentExplorer(pipe=cogviz.load_pipeline('toy'), image=sample_path('shapes'), steps=4)\nex"),
        nbformat.v4.new_code_cell("ex.step.value = 3\nex.view.value = 'overview'\nprint('shown:', ex.info.value)")]
    nbformat.write(nb, root / "explorer.ipynb")
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


def _open_and_run(page, base, token, name, ready_js):
    # a workspace of its own per notebook, reset: only this notebook is open in the page
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?token={token}&reset")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=30_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    deadline = time.time() + 90
    while time.time() < deadline:
        # run the cells once the kernel is up; fire and forget: the promise settles only when the run ends
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_selector(".jp-OutputArea .widget-image", timeout=15_000)
            break
        except Exception:
            continue
    try:
        page.wait_for_function(ready_js, timeout=90_000)
    except Exception:
        text = page.inner_text(".jp-Notebook")
        pytest.fail(f"{name} did not render in time; the page says:\n{text[-3000:]}")
    return page.inner_text(".jp-Notebook")


def _images_loaded(n):
    return (f"document.querySelectorAll('.jp-OutputArea .widget-image').length >= {n} && "
            "[...document.querySelectorAll('.jp-OutputArea .widget-image')].every(i => i.naturalWidth > 0)")


def _page_text(lab, name: str, ready_js: str, height: int = 1000) -> str:
    """Open the notebook in Chromium, run it, wait for ``ready_js``; the page's text (no widget errors)."""
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        text = _open_and_run(page, base, token, name, ready_js)
        page.screenshot(path=str(root / f"{Path(name).stem}.png"))
        browser.close()
    assert "Error displaying widget" not in text and "Failed to load model" not in text
    return text


def test_image_fitter_renders_in_jupyterlab(lab):
    text = _page_text(lab, "fitter.ipynb", _images_loaded(2))
    assert "cropped" in text and "Preset" in text  # the report and the controls are on the page


def test_generate_ui_renders_and_shows_the_video_in_jupyterlab(lab):
    # fitter source + fitted, live preview, player frame: four images with pixels once the run ended
    text = _page_text(lab, "generate.ipynb",
                      _images_loaded(4) + " && document.body.innerText.includes('frames (17, 64, 96, 3)')", 1400)
    for label in ("Run", "Prompt", "Guidance", "predicted clean frame 0", "17 frames at 64x96"):
        assert label in text, label


def test_latent_explorer_renders_and_follows_its_sliders_in_jupyterlab(lab):
    text = _page_text(lab, "explorer.ipynb",
                      _images_loaded(1) + " && document.body.innerText.includes('shown: input, step 4/4')", 1200)
    for label in ("Tensor", "Latent frame", "Channels", "Norm", "View", "(all frames)"):
        assert label in text, label
