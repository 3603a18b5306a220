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


def _makefile_lab_flags() -> list[str]:
    line = next(l for l in (Path(__file__).resolve().parents[1] / "Makefile").read_text().splitlines()
                if l.startswith("LAB_FLAGS"))
    return line.split("=", 1)[1].split()


LAB_FLAGS = _makefile_lab_flags()


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), or "
                    "deselect this test with -m 'not browser'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _need_chromium()
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
    yield from _serve_lab(root, {**os.environ, "MPLBACKEND": "Agg"})


def _serve_lab(root: Path, env: dict):
    """Start JupyterLab over ``root`` with `make lab`'s flags; yield (base URL, token, root); stop it."""
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.extension_manager=readonly", *LAB_FLAGS, "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=open(root / "lab.log", "w"), env=env)
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


def _page_text(lab, name: str, ready_js: str, height: int = 1000, probes: dict | None = None) -> str:
    """Open the notebook in Chromium, run it, wait for ``ready_js``; the page's text (no widget errors).
    ``probes``: ``{name: js}``, each replaced by what the js returns on the finished page."""
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        text = _open_and_run(page, base, token, name, ready_js)
        for key, js in (probes or {}).items():
            probes[key] = page.evaluate(js)
        page.screenshot(path=str(root / f"{Path(name).stem}.png"))
        browser.close()
    assert "Error displaying widget" not in text and "Failed to load model" not in text
    return text


def test_image_fitter_renders_in_jupyterlab(lab):
    text = _page_text(lab, "fitter.ipynb", _images_loaded(2))
    assert "cropped" in text and "Preset" in text  # the report and the controls are on the page


#: Each text box's placeholder in the outputs: (placeholder, its width in the box's font, the room the box has).
_PLACEHOLDERS = """() => [...document.querySelectorAll('.jp-OutputArea input[placeholder]')].map(i => {
  const s = getComputedStyle(i), ctx = document.createElement('canvas').getContext('2d');
  ctx.font = s.font;
  return [i.placeholder, ctx.measureText(i.placeholder).width,
          i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight)];
})"""


def test_generate_ui_renders_and_shows_the_video_in_jupyterlab(lab):
    from cogviz.presets import PROMPT_HINT

    # fitter source + fitted, live preview, player frame: four images with pixels once the run ended
    probes = {"placeholders": _PLACEHOLDERS}
    text = _page_text(lab, "generate.ipynb",
                      _images_loaded(4) + " && document.body.innerText.includes('frames (17, 64, 96, 3)')", 1400,
                      probes=probes)
    for label in ("Run", "Prompt", "Guidance", "predicted clean frame 0", "17 frames at 64x96"):
        assert label in text, label
    shown = {p: (width, room) for p, width, room in probes["placeholders"]}
    assert PROMPT_HINT in shown and "the camera holds still" in PROMPT_HINT
    assert all(width <= room for width, room in shown.values()), shown  # every hint shows whole


def test_latent_explorer_renders_and_follows_its_sliders_in_jupyterlab(lab):
    text = _page_text(lab, "explorer.ipynb",
                      _images_loaded(1) + " && document.body.innerText.includes('shown: input, step 4/4')", 1200)
    for label in ("Tensor", "Latent frame", "Channels", "Norm", "View", "(all frames)"):
        assert label in text, label


# ------------------------------------------------------------------- every lesson, as a reader opens it
from test_notebooks import ANSWERS, NOTEBOOKS, PICTURES, check_executed  # noqa: E402

#: per lesson: (widget class shown in the page's text, the label of the slider to move) for each widget
WIDGET_SLIDERS = {
    "01_image_conditioning_preparation": [("ImageFitter", "Focus x")],  # the lesson leaves it in pad mode,
    "04_channel_concatenation": [("LatentExplorer", "Step")],
    "05_i2v_generation": [("GenerateUI", "Frame")],
    "13_sweeps": [("AblationLab", "Frame")],
}

_RUN_FINISHED = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext.session) return false;
  const k = nb.sessionContext.session.kernel;
  const code = nb.content.widgets.filter(c => c.model.type === 'code');
  return k && k.status === 'idle' && code.every(c => c.model.executionCount > 0);
}"""

_ERRORS = """() => {
  const out = [];
  for (const c of window.jupyterapp.shell.currentWidget.content.widgets) {
    if (c.model.type !== 'code') continue;
    for (let i = 0; i < c.model.outputs.length; i++) {
      const o = c.model.outputs.get(i);
      if (o.type === 'error') out.push(JSON.stringify(o.toJSON()).slice(0, 600));
    }
  }
  return out;
}"""

_PICTURES = """() => [...document.querySelectorAll('.jp-OutputArea .jp-RenderedImage img')]
  .map(i => [i.naturalWidth, i.naturalHeight])"""

_SLIDER_CELL_IMAGES = """(label) => {
  const slider = [...document.querySelectorAll('.widget-slider')].find(
      s => (s.querySelector('.widget-label') || {}).textContent === label);
  if (!slider) return null;
  const area = slider.closest('.jp-OutputArea');
  return [...area.querySelectorAll('img')].map(i => i.src.length + ':' + i.src.slice(-64));
}"""


def _lab_settings(root: Path) -> Path:
    """User settings for the test server: render every cell (no virtual scrolling), no news prompt."""
    d = root / "lab-settings"
    (d / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (d / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    return d


@pytest.fixture(scope="module")
def lessons_lab(tmp_path_factory):
    """JupyterLab over a copy of notebooks/, each lesson's exercise answered (ANSWERS), started with
    the flags `make lab` uses."""
    from cogviz.lessons import with_answers

    _need_chromium()
    root = tmp_path_factory.mktemp("lessons")
    for path in NOTEBOOKS:
        nbformat.write(with_answers(nbformat.read(path, as_version=4), ANSWERS[path.stem]), root / path.name)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel runs as a user's does
    env["JUPYTERLAB_SETTINGS_DIR"] = str(_lab_settings(root))
    yield from _serve_lab(root, env)




def test_make_lab_turns_off_the_news_prompt():
    # the prompt appears while the notification setting fetchNews is "none": `make install` copies
    # lab-settings/overrides.json into the venv's JupyterLab settings; the lesson tests check the page itself
    assert "--LabApp.news_url=None" in LAB_FLAGS
    overrides = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(overrides.read_text())["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def _screenshot(page, root: Path, stem: str) -> None:
    """A full-length screenshot of the notebook for a person to look at (its path goes to the log)."""
    height = page.evaluate("() => { const n = document.querySelector('.jp-WindowedPanel-outer') || "
                           "document.querySelector('.jp-NotebookPanel-notebook'); return n ? n.scrollHeight + 200 : 1000; }")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 30000))})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer, .jp-NotebookPanel-notebook')"
                  ".forEach(n => { n.scrollTop = 0; })")
    page.wait_for_timeout(800)
    shot = root / f"{stem}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of {stem}: {shot}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_shows_everything_in_jupyterlab(lessons_lab, path, executed_lessons):
    from playwright.sync_api import sync_playwright

    base, token, root = lessons_lab
    stem = path.stem
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/workspaces/{stem}/tree/{path.name}?token={token}&reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_function("window.jupyterapp !== undefined && window.jupyterapp.shell.currentWidget "
                               "&& window.jupyterapp.shell.currentWidget.sessionContext.isReady", timeout=90_000)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(_RUN_FINISHED, timeout=420_000, polling=500)
        except Exception:
            pytest.fail(f"{stem} did not finish running; the page says:\n{page.inner_text('.jp-Notebook')[-3000:]}")
        page.wait_for_timeout(1500)  # let the last outputs and widget views render
        _screenshot(page, root, stem)  # taken first, so a failing lesson leaves its picture too
        text = page.inner_text(".jp-Notebook")
        (root / f"{stem}.txt").write_text(text)
        assert page.evaluate(_ERRORS) == []
        # the lesson as JupyterLab saves it passes the headless run's checks (that run is deselected)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        saved = nbformat.read(root / path.name, as_version=4)
        check_executed(saved, stem)
        nbformat.write(saved, executed_lessons / path.name)  # the documentation test renders it
        assert "Error displaying widget" not in text and "Failed to load model" not in text
        assert "official Jupyter news" not in page.inner_text("body")
        assert "<Figure size" not in text and "<cogviz Picture" not in text
        # the math is typeset: no display formula left as raw $$ ... $$ text, and a lesson that writes
        # formulas shows them as MathJax output
        assert "$$" not in text, f"{stem}: a formula is shown as raw text"
        if "$" in "".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"):
            assert page.evaluate("() => document.querySelectorAll('.jp-RenderedMarkdown mjx-container').length") > 0, \
                f"{stem}: its formulas are not typeset"
        page.wait_for_function(f"() => ({_PICTURES})().every(([w, h]) => w > 0 && h > 0)", timeout=30_000)
        sizes = page.evaluate(_PICTURES)
        assert len(sizes) == PICTURES[stem], f"{stem}: {len(sizes)} pictures in the page, expected {PICTURES[stem]}"
        assert all(w > 0 and h > 0 for w, h in sizes), sizes
        widget_images = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea .widget-image')]"
                                      ".map(i => i.naturalWidth)")
        assert all(w > 0 for w in widget_images), widget_images
        clipped = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea .widget-image')].filter(i => {
            const area = i.closest('.jp-OutputArea-output').getBoundingClientRect(), r = i.getBoundingClientRect();
            return r.width > 0 && r.right > area.right + 1; }).map(i => i.getBoundingClientRect().right)""")
        assert clipped == [], f"{stem}: widget pictures run past the output area's right edge: {clipped}"
        for widget, label in WIDGET_SLIDERS.get(stem, []):
            before = page.evaluate(_SLIDER_CELL_IMAGES, label)
            assert before, f"{stem}: the {widget}'s '{label}' slider or its pictures are not on the page"
            handle = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=label)).first \
                .locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            for _ in range(3):
                page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
            page.wait_for_function(f"(b) => JSON.stringify(({_SLIDER_CELL_IMAGES})({json.dumps(label)})) "
                                   "!== JSON.stringify(b)", arg=before, timeout=30_000)
        browser.close()
