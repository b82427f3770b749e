"""Start the whole system: database, Redis, migrations, the arq worker and Reflex (prod, one port).

`make run` calls this after devstack/install.sh. A worker that exits is restarted (backing off while
it keeps failing) and the app stays up; Ctrl-C, or the app exiting, stops every child it started, in
reverse order.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.postgres import PostgresCluster, postgres_bindir
from convassist.settings import SettingsError, load_settings
from devstack.redis import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"\033[1;32m[convassist]\033[0m {message}", file=sys.stderr, flush=True)


def reflex_env(base: dict[str, str]) -> dict[str, str]:
    """Environment for Reflex: bun from npm, no internet checks, no telemetry."""
    env = dict(base)
    bun_bin = Path(env.get("CONVASSIST_CACHE_DIR", Path.home() / ".cache" / "convassist")) / "bun" / "bin"
    env["PATH"] = f"{bun_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("REFLEX_USE_SYSTEM_BUN", "1")
    env.setdefault("REFLEX_CHECK_LATEST_VERSION", "0")
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env.setdefault("GRANIAN_WORKERS", "2")  # Reflex would start min(2×cores+1, 8) with Redis state
    return env


@dataclass
class Child:
    """A process this command runs. `restart`: restarted with backoff when it exits (the worker: a
    crash must not take the app down); otherwise its exit stops everything."""

    name: str
    args: list[str]
    env: dict[str, str]
    restart: bool = False
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # exits in a row within STABLE_SECONDS of starting
    restart_at: float | None = None  # when a scheduled restart is due


STABLE_SECONDS = 60  # a child that ran this long before exiting starts over at the shortest backoff
MAX_BACKOFF = 60


class Stack:
    """The children this command started, stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.services: list = []

    def spawn(self, name: str, args: list[str], env: dict[str, str], *, restart: bool = False) -> Child:
        child = Child(name, args, env, restart)
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        # a process group of its own: Ctrl-C reaches us once and we stop children in order
        child.process = subprocess.Popen(child.args, cwd=ROOT, env=child.env, start_new_session=True)
        child.started_at, child.restart_at = time.monotonic(), None

    def check(self) -> str | None:
        """Restart what is due; why everything must stop, if a child that is not restarted exited."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            if not child.restart:
                return f"{child.name} exited with {child.process.returncode}"
            if child.restart_at is None:  # it just exited: back off 1, 2, 4 ... 60 s while it keeps failing
                quick = now - child.started_at < STABLE_SECONDS
                child.quick_exits = child.quick_exits + 1 if quick else 1
                delay = min(MAX_BACKOFF, 2 ** (child.quick_exits - 1))
                child.restart_at = now + delay
                say(f"{child.name} exited with {child.process.returncode}; restarting in {delay} s")
            elif now >= child.restart_at:
                self._start(child)
        return None

    def stop(self) -> None:
        running = [c for c in reversed(self.children) if c.process is not None]
        for child in running:
            if child.process.poll() is None:
                say(f"stopping {child.name}")
                os.killpg(child.process.pid, signal.SIGTERM)
        for child in running:
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        for service in reversed(self.services):
            say(f"stopping {type(service).__name__}")
            service.stop()


def _terminate(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("CONVASSIST_PORT", "3000")))
    args = parser.parse_args()

    env = dict(os.environ)
    env["CONVASSIST_PORT"] = str(args.port)  # the app's own origin (CORS, the address the UI shows)
    data_dir = Path(env.get("CONVASSIST_DATA_DIR", ROOT / "data")).resolve()
    env["CONVASSIST_DATA_DIR"] = str(data_dir)
    stack = Stack()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT may arrive ignored (nohup, &)
        signal.signal(signum, _terminate)
    try:
        load_settings()
    except SettingsError as exc:
        say(str(exc))
        return 2
    try:
        if env.get("DATABASE_URL") or env.get("DATABASE_POSTGRES_USER"):
            say("database: using the configured DATABASE_URL")
        elif postgres_bindir() is not None:
            cluster = PostgresCluster(data_dir / "postgres")
            cluster.start()
            stack.services.append(cluster)
            cluster.wait_ready()
            cluster.create_database("convassist")
            env["DATABASE_URL"] = cluster.url("convassist")
            say(f"database: private PostgreSQL on 127.0.0.1:{cluster.port} (data in {cluster.data_dir})")
        else:
            env["DATABASE_URL"] = f"sqlite:///{data_dir / 'convassist.db'}"
            say("database: no PostgreSQL server binaries found — falling back to SQLite "
                f"({data_dir / 'convassist.db'}); install postgresql for the real thing")

        if env.get("REDIS_URL"):
            say("redis: using the configured REDIS_URL")
        else:
            redis = RedisServer(data_dir / "redis")
            redis.start()
            stack.services.append(redis)
            env["REDIS_URL"] = redis.url
            say(f"redis: private redis-server on 127.0.0.1:{redis.port} ({redis.binary})")

        rx_env = reflex_env(env)
        python = sys.executable
        say("migrations: reflex db migrate")
        subprocess.run([python, "-m", "reflex", "db", "migrate"], cwd=ROOT, env=rx_env, check=True)

        stack.spawn("worker", [python, "-m", "convassist.worker"], env, restart=True)
        stack.spawn("reflex", [python, "-m", "reflex", "run", "--env", "prod", "--single-port",
                               "--frontend-port", str(args.port), "--backend-port", str(args.port)], rx_env)
        say(f"starting on http://localhost:{args.port} (health: /api/health, API docs: /api/docs); Ctrl-C stops")
        while (reason := stack.check()) is None:
            time.sleep(0.5)
        say(f"{reason}; stopping everything")
        return 1
    except KeyboardInterrupt:
        say("Ctrl-C: stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        say(f"failed: {' '.join(map(str, exc.cmd[1:4]))} exited with {exc.returncode}")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
