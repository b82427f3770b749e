"""`python -m ml pull` against a local server that serves files the way the Hugging Face hub does
(HF_ENDPOINT): the file lands where the worker looks, a cut-off download resumes from where it stopped,
and a file that does not match the hub's checksum is refused and removed."""

import hashlib
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml.registry import REGISTRY, resolve_model
from tests.conftest import ROOT

MODEL = "qwen2.5-0.5b-instruct"
# stands in for the GGUF (pull checks bytes, not formats); over two of huggingface_hub's 10 MB read chunks,
# so that a download cut half way has whole chunks on disk to resume from
BLOB = os.urandom(24 << 20)


class FakeHub(BaseHTTPRequestHandler):
    """HEAD/GET /{repo}/resolve/{revision}/{file}, with the hub's headers and byte ranges."""

    blob = BLOB
    etag = hashlib.sha256(BLOB).hexdigest()
    cut_first_get = False
    ranges: list = []
    gets: list = []

    def log_message(self, *args):
        pass

    def _headers(self, length: int, status: int = 200, extra: dict | None = None):
        self.send_response(status)
        self.send_header("ETag", f'"{self.etag}"')
        self.send_header("X-Repo-Commit", "a" * 40)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _known(self) -> bool:
        spec = REGISTRY[MODEL]
        if self.path.split("?")[0] != f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}":
            self.send_response(404)
            self.end_headers()
            return False
        return True

    def do_HEAD(self):
        if self._known():
            self._headers(len(self.blob))

    def do_GET(self):
        type(self).gets.append(self.headers.get("Range"))
        if not self._known():
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            type(self).ranges.append(start)
        body = self.blob[start:]
        if start:
            self._headers(len(body), 206, {"Content-Range": f"bytes {start}-{len(self.blob) - 1}/{len(self.blob)}"})
        else:
            self._headers(len(body))
        if type(self).cut_first_get:  # the connection drops half way
            type(self).cut_first_get = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeHub.ranges, FakeHub.gets, FakeHub.cut_first_get, FakeHub.blob = [], [], False, BLOB
    FakeHub.etag = hashlib.sha256(BLOB).hexdigest()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def pull(endpoint: str, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(data_dir / "hf-home"),
           "CONVASSIST_DATA_DIR": str(data_dir), "HF_HUB_DISABLE_TELEMETRY": "1"}
    return subprocess.run([sys.executable, "-m", "ml", "pull", MODEL], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_model_is_pulled_where_the_worker_looks(hub, tmp_path):
    done = pull(hub, tmp_path)
    assert done.returncode == 0, done.stderr
    resolved = resolve_model(MODEL, None, tmp_path / "models")
    assert resolved.found and resolved.path.read_bytes() == BLOB
    assert "ML_SERVICE_MODEL_ID=qwen2.5-0.5b-instruct" in done.stdout


def test_a_cut_off_download_resumes_where_it_stopped(hub, tmp_path):
    FakeHub.cut_first_get = True  # the connection drops half way through
    done = pull(hub, tmp_path)
    assert done.returncode == 0, done.stderr
    # it asked only for the rest: from the last whole chunk it had (10 MB) on
    assert FakeHub.ranges == [10 << 20], (FakeHub.gets, done.stderr[-300:])
    assert (tmp_path / "models" / REGISTRY[MODEL].filename).read_bytes() == BLOB


def test_a_file_that_does_not_match_the_hubs_checksum_is_refused(hub, tmp_path):
    FakeHub.etag = hashlib.sha256(b"something else").hexdigest()
    done = pull(hub, tmp_path)
    assert done.returncode == 1 and "does not match the hub's checksum" in done.stderr
    assert not (tmp_path / "models" / REGISTRY[MODEL].filename).exists()


def test_unknown_and_packaged_models_say_why(tmp_path):
    from ml.pull import PullError
    from ml.pull import pull as pull_model

    with pytest.raises(PullError, match="unknown model"):
        pull_model("gpt-17", tmp_path)
    with pytest.raises(PullError, match="not on the hub"):
        pull_model("smollm2-135m-instruct", tmp_path)
