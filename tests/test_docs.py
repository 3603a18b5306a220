"""The documentation site builds (`make docs`' own script) and reads well in Chromium.

The build renders the lessons this test session already executed (``executed_lessons``: the
JupyterLab runs of tests/test_browser.py, which sort before this file, or the headless runs); a
lesson not executed yet is run here once, with its answers. Then every page is opened in Debian's
Chromium: no console error, no failed request, no broken internal link or anchor, the lessons'
pictures decoded (at least as many as the notebook shows), the math typeset by the local MathJax.
"""
import html
import re
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium
from test_notebooks import ANSWERS, NOTEBOOKS, PICTURES

from cogviz import lessons

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]
#: the guide's topics, each a page of the site
GUIDE = ["prepare", "encode", "generate", "ablations", "inside", "sweeps", "gpu", "toy-model", "development"]


def _docs_build():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import build
    finally:
        sys.path.pop(0)
    return build


@pytest.fixture(scope="module")
def site(tmp_path_factory, executed_lessons):
    _need_chromium()
    for path in NOTEBOOKS:
        if not (executed_lessons / path.name).exists():
            nbformat.write(lessons.run(path, answers=ANSWERS[path.stem]), executed_lessons / path.name)
    html = _docs_build().build(tmp_path_factory.mktemp("docs"), executed=executed_lessons)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'<a\b[^>]*?\bhref="([^"]+)"')


def _parse(page: Path) -> tuple[set, list]:
    """The ids and the link targets of one page (regular expressions: the lesson pages carry megabytes
    of inline pictures and videos that an HTML parser would walk through)."""
    text = page.read_text(encoding="utf-8")
    return set(_ID.findall(text)), [html.unescape(h) for h in _HREF.findall(text)]


def broken_links(site_dir: Path) -> list[str]:
    """Internal links of the site (relative hrefs) whose file or #anchor does not exist."""
    parsed, broken = {}, []
    for page in sorted(site_dir.rglob("*.html")):
        for href in _parse(page)[1]:
            url = urlparse(href)
            if url.scheme or url.netloc or href.startswith("mailto:"):
                continue
            target = (page if not url.path else (page.parent / unquote(url.path))).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site_dir)}: {href}")
            elif url.fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, _parse(target)[0])
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(site_dir)}: {href} (no such anchor)")
    return broken


def test_broken_links_are_found(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#there">b</a><a href="missing.html">m</a><a href="#top">t</a>'
                                     '<a href="https://example.org/x">x</a><p id="top"></p>')
    (tmp_path / "b.html").write_text('<p id="here"></p>')
    assert broken_links(tmp_path) == ["a.html: b.html#there (no such anchor)", "a.html: missing.html"]


def test_the_site_has_the_guide_the_api_and_every_lesson(site):
    html, _ = site
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    assert {f"guide/{g}.html" for g in GUIDE} <= pages
    assert {f"lessons/{p.stem}.html" for p in NOTEBOOKS} <= pages
    assert {"index.html", "api.html", "generated/cogviz.sweep.html", "generated/cogviz.sampler.html",
            "generated/cogviz.plan.html", "generated/cogviz.hooks.html", "generated/cogviz.readmaps.html"} <= pages
    api = (html / "generated" / "cogviz.sampler.html").read_text()
    assert 'id="cogviz.sampler.sample"' in api  # from the docstrings
    plan = (html / "generated" / "cogviz.plan.html").read_text()
    assert 'id="cogviz.plan.Settings"' in plan and 'id="cogviz.plan.CallPlan"' in plan
    assert broken_links(html) == []


def test_every_page_loads_without_a_console_error(site, tmp_path):
    from playwright.sync_api import sync_playwright

    html, base = site
    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html"))
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: m.type == "error" and problems.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        # a request our own next navigation cancels (a favicon still loading) is not the site's fault
        page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and problems.append(
            f"{page.url}: failed {r.url} ({r.failure})"))
        page.on("request", lambda r: not r.url.startswith(("data:", base)) and problems.append(
            f"{page.url}: leaves the site: {r.url}"))
        for name in pages:
            page.goto(urljoin(base + "/", name), wait_until="load")
        for name in ("index.html", "lessons/01_image_conditioning_preparation.html", "api.html"):
            page.goto(urljoin(base + "/", name), wait_until="load")
            page.screenshot(path=str(tmp_path / name.replace("/", "_").replace(".html", ".png")), full_page=True)
        browser.close()
    print(f"\nscreenshots of the site: {tmp_path}")
    assert problems == [], problems[:10]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_lesson_page_shows_its_pictures(site, path):
    from playwright.sync_api import sync_playwright

    _, base = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{base}/lessons/{path.stem}.html", wait_until="load")
        page.wait_for_function("() => [...document.querySelectorAll('.cell_output img')].every(i => i.complete)")
        sizes = page.evaluate("() => [...document.querySelectorAll('.cell_output img')]"
                              ".map(i => [i.naturalWidth, i.naturalHeight])")
        assert len(sizes) >= PICTURES[path.stem], f"{len(sizes)} pictures, the notebook shows {PICTURES[path.stem]}"
        assert all(w > 0 and h > 0 for w, h in sizes), sizes
        text = page.inner_text("article")
        assert "<Figure size" not in text and "Traceback" not in text
        assert "correct: " in text  # the exercise's check, as run with the answers
        markdown = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        if any("$" in m for m in markdown):  # a lesson with math: typeset by the local MathJax, not left as TeX
            page.wait_for_selector(".MathJax, .MathJax_CHTML, mjx-container", timeout=20_000)
        browser.close()
