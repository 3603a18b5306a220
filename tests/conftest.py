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
        elif p == "/slow.png":
            time.sleep(3)
            self._send(200, png_bytes())
        else:
            self._send(404, b"", "text/plain")


@pytest.fixture(scope="session")
def http_server():
    """A loopback HTTP server (127.0.0.1, random port) with good and bad image endpoints."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """GPU tests run where CUDA is; elsewhere they are deselected (and counted as such), not skipped."""
    import torch

    if torch.cuda.is_available():
        return
    gpu = [i for i in items if i.get_closest_marker("gpu")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [i for i in items if not i.get_closest_marker("gpu")]
