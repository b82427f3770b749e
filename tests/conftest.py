"""Real parts for every test: one private PostgreSQL and one Redis per session, a clean database per test.

Slow fixtures (the worker process with the real model, the running Reflex app) start on first use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from devstack.ports import free_port
from devstack.postgres import PostgresCluster
from devstack.redis import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-" + "x" * 40


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def pytest_collection_modifyitems(items):
    """Browser tests last, wherever they live: once the session's browser starts, Playwright's sync
    API holds an event loop in the main thread, and tests that call asyncio.run cannot run after it."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg") / "data", fast=True)
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres) -> str:
    """The test database, migrated to head through the project's alembic migrations."""
    postgres.create_database("convassist_test")
    url = postgres.url("convassist_test")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session", autouse=True)
def stack_env(request, tmp_path_factory):
    """Point settings at the test services (started lazily only for tests that use the database)."""
    data_dir = tmp_path_factory.mktemp("data")
    os.environ.update({"CONVASSIST_DATA_DIR": str(data_dir), "JWT_SECRET": TEST_SECRET,
                       "ML_SERVICE_QUEUE": "convassist:test-queue", "ML_SERVICE_THREADS": "2",
                       "ML_SERVICE_TRAIN_THREADS": "2"})
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    from convassist.settings import get_settings

    get_settings.cache_clear()
    yield data_dir


@pytest.fixture(scope="session")
def services_env(database_url, redis_server):
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_server.url
    from convassist.settings import get_settings

    get_settings.cache_clear()
    return {**os.environ}


@pytest.fixture
def settings_env(monkeypatch):
    """Run part of a test under other settings: settings_env(NAME="value", ...) sets the variables and
    makes the app re-read its settings and reconnect to Redis; all of it is undone after the test."""
    from convassist.services import queue
    from convassist.settings import get_settings

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        queue._pools.clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    queue._pools.clear()


@pytest.fixture
def db(services_env, redis_server):
    """A clean database and Redis for this test; yields the engine."""
    from convassist.db import get_engine
    from convassist.services import queue

    engine = get_engine()
    with engine.begin() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    import redis

    client = redis.Redis.from_url(redis_server.url)
    # keep the workers' entries (convassist.worker.status): the worker process outlives single tests
    for key in client.scan_iter("*"):
        if not (key.endswith((b":health-check", b":workers")) or b":worker:" in key):
            client.delete(key)
    client.close()
    queue._pools.clear()
    yield engine


@pytest.fixture
def api(db):
    """The FastAPI app in-process, on the real database and Redis."""
    from fastapi.testclient import TestClient

    from convassist.api import create_api

    with TestClient(create_api(), raise_server_exceptions=False) as client:
        yield client


def _wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def start_worker(env: dict, log=subprocess.DEVNULL) -> subprocess.Popen:
    """A real worker (`python -m convassist.worker`) with env, once it has registered itself (model loaded)."""
    import redis

    from convassist.worker.status import registered_pids

    process = subprocess.Popen([sys.executable, "-m", "convassist.worker"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        _wait_for(lambda: process.pid in registered_pids(client, env["ML_SERVICE_QUEUE"]), 120, "worker", process)
    finally:
        client.close()
    return process


@pytest.fixture(scope="session")
def worker_process(services_env, redis_server, tmp_path_factory):
    """The real arq worker (`python -m convassist.worker`) with the real SmolLM2 model."""
    log = open(tmp_path_factory.mktemp("worker") / "worker.log", "w")
    process = start_worker(services_env, log)
    yield process
    process.terminate()
    process.wait(timeout=20)
    log.close()


def start_reflex(env: dict, port: int, log, cwd: Path = ROOT) -> subprocess.Popen:
    """`reflex run --env prod --single-port` on port, once it serves pages and its socket. It builds
    the frontend into cwd/.web at start: instances running at once need a cwd each."""
    import httpx

    from devstack.run import reflex_env

    process = subprocess.Popen(
        [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
         "--frontend-port", str(port), "--backend-port", str(port)],
        cwd=cwd, env=reflex_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(base + "/login", timeout=2, follow_redirects=True).status_code == 200 and \
                httpx.get(base + "/ping", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_for(ready, 300, "reflex app", process)
    return process


def stop_process_group(process: subprocess.Popen, sig: int = 15) -> None:
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.fixture(scope="session")
def live_app(services_env, worker_process, tmp_path_factory):
    """`reflex run --env prod --single-port` on a free port, on the test database, Redis and worker."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("reflex") / "reflex.log"
    log = open(log_path, "w")
    try:
        process = start_reflex({**services_env, "CONVASSIST_PUBLIC_URL": f"http://127.0.0.1:{port}"}, port, log)
    except Exception:
        log.flush()
        print(log_path.read_text()[-5000:], file=sys.stderr)
        raise
    yield f"http://127.0.0.1:{port}"
    stop_process_group(process)
    log.close()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


class ApiServer:
    """The API alone (uvicorn), for clients that speak HTTP (the Mac agent); can be stopped and restarted."""

    def __init__(self, env: dict):
        self.env, self.port, self.process = env, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import httpx

        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "convassist.api:create_api", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=self.env)

        def up() -> bool:
            try:
                return httpx.get(self.url + "/api/openapi.json", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(up, 30, "API server", self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def api_server(services_env):
    server = ApiServer(services_env)
    server.start()
    yield server
    server.stop()
