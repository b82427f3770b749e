"""A private PostgreSQL cluster under a directory, for the run command and the tests.

initdb/pg_ctl refuse to run as root, so as root the cluster belongs to the `postgres` OS user.
It listens on 127.0.0.1 and its socket directory only, and every connection needs the password
(scram-sha-256) generated once and kept (0600) beside the data directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from devstack.ports import free_port

_TEST_FLAGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def postgres_bindir() -> Path | None:
    """The directory of PostgreSQL's server binaries, or None when the server is not installed."""
    pg_config = shutil.which("pg_config")
    candidates: list[Path] = []
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists() and (path / "postgres").exists():
            return path
    return None


class PostgresCluster:
    """initdb (once), start on a free port, create databases, stop."""

    def __init__(self, data_dir: Path, *, fast: bool = False, user: str = "convassist"):
        self.data_dir = Path(data_dir).resolve()
        self.bindir = postgres_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.fast = fast
        self.user = user
        self.port: int | None = None
        self._as_postgres = os.geteuid() == 0

    # -- process helpers -------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {"capture_output": True, "text": True}
        if self._as_postgres:
            kwargs["user"] = "postgres"
            kwargs["group"] = "postgres"
            kwargs["extra_groups"] = []
        result = subprocess.run([str(self.bindir / args[0]), *args[1:]], **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def _prepare_dirs(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not self._as_postgres:
            return
        pw = pwd.getpwnam("postgres")
        # every parent must be traversable by postgres (pytest/mkdtemp dirs are 0700)
        for parent in list(self.data_dir.parents)[:-1]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o011)
        if self.data_dir.exists():
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        else:
            self.data_dir.mkdir(mode=0o700)
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def password(self) -> str:
        """The superuser's password, made on first use (kept next to the data dir, not in it: the
        data dir belongs to the postgres user)."""
        path = self.data_dir.with_name(self.data_dir.name + ".password")
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def _initdb(self) -> None:
        pwfile = self.data_dir.parent / f".{self.data_dir.name}.pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        try:
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            flags = ["--no-sync"] if self.fast else []
            self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", *flags)
        finally:
            pwfile.unlink(missing_ok=True)

    def _require_passwords(self) -> None:
        """A cluster made before passwords (trust): set the password, then switch to scram-sha-256."""
        hba = self.data_dir / "pg_hba.conf"
        text = hba.read_text()
        if " trust" not in text:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER USER {} PASSWORD {}").format(sql.Identifier(self.user),
                                                                       sql.Literal(self.password)))
        hba.write_text(text.replace(" trust", " scram-sha-256"))
        self._run("pg_ctl", "-D", str(self.data_dir), "reload")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> None:
        self._prepare_dirs()
        if not self.initialised:
            self._initdb()
        self._stop_stale()
        self.port = port or free_port()
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        if self.fast:
            options += " " + _TEST_FLAGS
        log = self.data_dir / "server.log"
        result = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", options,
                           "-w", "-t", "30", "start", check=False)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {tail}")
        self._require_passwords()

    def _stop_stale(self) -> None:
        # a cluster left running by a killed run would hold the data dir
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def stop(self) -> None:
        if self.initialised:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop",
                      check=False)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE name (from template) unless it exists."""
        import psycopg

        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return
            sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            conn.execute(sql)

    def wait_ready(self, timeout: float = 10.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(driver="postgresql"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
