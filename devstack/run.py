"""Start the whole system: database, Redis, migrations, the arq worker and Reflex (prod, one port).

`make run` calls this after devstack/install.sh. Ctrl-C (or any child exiting) stops every child
it started, in reverse order.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
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


class Stack:
    """The children this command started, stopped in reverse order."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.services: list = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        # a process group of its own: Ctrl-C reaches us once and we stop children in order
        process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                say(f"stopping {name}")
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
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

        stack.spawn("worker", [python, "-m", "ml"], env)
        stack.spawn("reflex", [python, "-m", "reflex", "run", "--env", "prod", "--single-port",
                               "--frontend-port", str(args.port), "--backend-port", str(args.port)], rx_env)
        say(f"starting on http://localhost:{args.port} (health: /api/health, API docs: /api/docs); Ctrl-C stops")
        while True:
            for name, process in stack.processes:
                if process.poll() is not None:
                    say(f"{name} exited with {process.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)
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
