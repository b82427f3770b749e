"""The real parts for a benchmark: a private PostgreSQL, Redis, the worker and the API server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.ports import free_port  # noqa: E402
from devstack.postgres import PostgresCluster  # noqa: E402
from devstack.redis import RedisServer  # noqa: E402


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


def paired_device(url: str) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    """A provider and an approved device, written through the models; returns their ids and tokens."""
    from sqlmodel import Session

    from convassist.db import engine_for
    from convassist.models import Device, Provider
    from convassist.services.tokens import DEVICE_AUDIENCE, PROVIDER_AUDIENCE, issue_token

    with Session(engine_for(url)) as session:
        provider = Provider(email=f"bench-{uuid.uuid4().hex[:6]}@example.com", name="Bench", password_hash="x")
        session.add(provider)
        session.flush()
        device = Device(name="Bench Mac", hardware_id=f"bench-{uuid.uuid4().hex[:6]}", provider_id=provider.id,
                        verified=True)
        session.add(device)
        session.commit()
        return (provider.id, device.id, issue_token(device.id, DEVICE_AUDIENCE)[0],
                issue_token(provider.id, PROVIDER_AUDIENCE)[0])


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not come up")
        time.sleep(0.2)


@contextmanager
def bench_stack(databases: tuple[str, ...] = ("bench",), *, redis: bool = True, worker: bool = False):
    """Start what the benchmark needs; yields a dict of URLs and the environment to run app code with."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        cluster = PostgresCluster(Path(tmp) / "pg", fast=True)
        cluster.start()
        cluster.wait_ready()
        services: list = [cluster]
        processes: list[subprocess.Popen] = []
        try:
            env = {**os.environ, "CONVASSIST_DATA_DIR": tmp, "JWT_SECRET": "bench-secret-" + "x" * 32,
                   "ML_SERVICE_QUEUE": "convassist:bench", "REDIS_URL": "redis://127.0.0.1:1/0"}
            urls = {}
            for name in databases:
                cluster.create_database(name)
                migrate(cluster.url(name))
                urls[name] = cluster.url(name)
            env["DATABASE_URL"] = urls[databases[0]]
            if redis:
                server = RedisServer(Path(tmp) / "redis", persist=False)
                server.start()
                services.append(server)
                env["REDIS_URL"] = server.url
            os.environ.update(env)
            from convassist.settings import get_settings

            get_settings.cache_clear()
            if worker:
                processes.append(subprocess.Popen([sys.executable, "-m", "convassist.worker"], cwd=ROOT, env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                import redis as redis_py

                client = redis_py.Redis.from_url(env["REDIS_URL"])
                deadline = time.monotonic() + 120
                from convassist.worker.status import registered_pids

                while processes[-1].pid not in registered_pids(client, env["ML_SERVICE_QUEUE"]):
                    if time.monotonic() > deadline or processes[-1].poll() is not None:
                        raise SystemExit("worker did not start")
                    time.sleep(0.1)
            yield {"env": env, "db": urls, "tmp": tmp, "start_api": lambda **kw: _start_api(env, processes, **kw)}
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
            for service in reversed(services):
                service.stop()


def _start_api(env: dict, processes: list, *, database_url: str | None = None, workers: int = 2,
               settings: dict[str, str] | None = None) -> str:
    """The API in granian, the server `reflex run --env prod` uses, with `make run`'s worker count;
    settings: environment variables of its own (e.g. ML_SERVICE_EXAMPLES)."""
    port = free_port()
    processes.append(subprocess.Popen(
        [str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--factory", "--workers", str(workers),
         "--port", str(port), "--log-level", "warning", "--no-access-log", "convassist.api:create_api"],
        cwd=ROOT, env={**env, **({"DATABASE_URL": database_url} if database_url else {}), **(settings or {})}))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/openapi.json")
    return base
