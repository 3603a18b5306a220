import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image


def png_bytes(size=(60, 40), colour=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, code, body=b"", ctype="image/png", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path
        if p == "/ok.png":
            self._send(200, png_bytes())
        elif p == "/missing.png":
            self._send(404, b"not here", "text/plain")
        elif p == "/error.png":
            self._send(500, b"boom", "text/plain")
        elif p == "/page.html":
            self._send(200, b"<html>hello</html>", "text/html")
        elif p == "/redirect.png":
            self._send(302, b"", extra=[("Location", "/ok.png")])
        elif p == "/loop.png":
            self._send(302, b"", extra=[("Location", "/loop.png")])
        elif p == "/big.png":
            self._send(200, b"\x89PNG" + b"0" * 200_000)
        elif p == "/big-undeclared.png":  # no Content-Length: the cap must be enforced while streaming
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"0" * 10_000)
        elif p.startswith("/trickle.png"):  # headers at once, then a byte every 0.2 s: each read succeeds
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"0")
                self.wfile.flush()
                time.sleep(0.2)
        elif p == "/slow.png":
            time.sleep(3)
            self._send(200, png_bytes())
        else:
            self._send(404, b"", "text/plain")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up on purpose (the loader's timeouts and size caps under test)
        super().handle_error(request, client_address)


@pytest.fixture(scope="session")
def http_server():
    """A loopback HTTP server (127.0.0.1, random port) with good and bad image endpoints."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _deselect(config, items, drop) -> None:
    gone = [i for i in items if drop(i)]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = [i for i in items if not drop(i)]


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs
def pytest_collection_modifyitems(config, items):
    """Two deselections, each counted as such in the summary (never a skip):

    * GPU tests run where CUDA is; elsewhere they are deselected.
    * Each lesson runs once. ``test_browser.py::test_lesson_shows_everything_in_jupyterlab[L]`` runs
      lesson L in JupyterLab, saves it and applies every check of
      ``test_notebooks.py::test_notebook_runs_and_shows_its_pictures[L]`` to the saved notebook
      (no error output, the lesson's picture count, no figure shown as text) before its own
      checks of the page; where it is collected, the headless run of L is deselected. Without
      the browser tests (``-m "not browser"``), the headless runs stay.
    """
    import torch

    if not torch.cuda.is_available():
        _deselect(config, items, lambda i: i.get_closest_marker("gpu"))
    in_lab = {i.callspec.id for i in items if i.originalname == "test_lesson_shows_everything_in_jupyterlab"}
    _deselect(config, items, lambda i: i.originalname == "test_notebook_runs_and_shows_its_pictures"
              and i.callspec.id in in_lab)


@pytest.fixture(scope="session")
def executed_lessons(tmp_path_factory):
    """A folder where each lesson, once executed in this test session (with its exercise answered),
    is saved under its own file name: the documentation test renders these instead of running the
    lessons a second time."""
    return tmp_path_factory.mktemp("executed-lessons")
