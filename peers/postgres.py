"""A throw-away PostgreSQL server for tests and the bench.

`PostgresServer` runs initdb and postgres from the PostgreSQL 15 binaries in a fresh
temporary directory, listening on 127.0.0.1 on a free port with trust authentication,
and stops it by PID. As root it runs them as the `postgres` system user (postgres
refuses to run as root). Set SOFTSWITCH_TEST_PG_DSN to use an existing server instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

__all__ = [
    "PG_BIN_DIR",
    "PG_DSN_ENV",
    "PostgresServer",
    "PostgresUnavailable",
    "create_database",
    "drop_database",
    "dsn_with_search_path",
    "external_dsn",
    "postgres_dsn",
    "random_schema_name",
]

PG_BIN_DIR = Path(os.environ.get("SOFTSWITCH_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_DSN_ENV = "SOFTSWITCH_TEST_PG_DSN"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_START_ATTEMPTS = 3  # a free port can be taken between probing and postgres binding it


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started; the message says how to fix it."""


def external_dsn() -> str | None:
    """The DSN of an existing server from SOFTSWITCH_TEST_PG_DSN, if set."""
    dsn = os.environ.get(PG_DSN_ENV, "").strip()
    return dsn or None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _run_sync(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion from synchronous code, even when called from a
    thread whose event loop is running (then it runs on a fresh loop in a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _probe(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=2.0)
    await conn.close()


async def _create_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10.0)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def create_database(dsn: str, name: str) -> str:
    """Create database `name` on the server of `dsn` (if missing); return its DSN."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    _run_sync(_create_database(dsn, name))
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _drop_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10.0)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on the server of `dsn` (nobody may be connected to it)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    _run_sync(_drop_database(dsn, name))


def dsn_with_search_path(dsn: str, schema: str) -> str:
    """The DSN with search_path set to `schema` (asyncpg passes unknown query
    parameters to the server as settings)."""
    parts = urlsplit(dsn)
    query = f"{parts.query}&search_path={schema}" if parts.query else f"search_path={schema}"
    return urlunsplit(parts._replace(query=query))


class PostgresServer:
    """A private PostgreSQL server in a temporary directory; a context manager."""

    def __init__(self, bin_dir: Path = PG_BIN_DIR, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        # Tests do not need crash safety; fsync off keeps them quick. Benchmarks
        # that want real-world figures pass durable=True.
        self.durable = durable
        self.port = 0
        self.base_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as: str | None = None

    @property
    def dsn(self) -> str:
        """DSN of the `postgres` maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _check_binaries(self) -> None:
        missing = [n for n in ("initdb", "postgres") if not (self.bin_dir / n).is_file()]
        if missing:
            raise PostgresUnavailable(
                f"PostgreSQL 15 binaries {', '.join(missing)} not found in {self.bin_dir}. "
                "`make test` installs them (Debian package postgresql-15); or set "
                f"{PG_DSN_ENV}=postgresql://user@host:port/db to use an existing server."
            )
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root but there is no `postgres` system user to run "
                    "PostgreSQL as; `make test` installs the postgresql-15 package, "
                    "which creates it"
                ) from None
            self._run_as = "postgres"

    def _run(self, *args: str) -> None:
        assert self.base_dir is not None
        result = subprocess.run(
            [str(a) for a in args],
            user=self._run_as,
            cwd=self.base_dir,
            env=self._env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()[-2000:]}"
            )

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}

    def start(self) -> None:
        """initdb, start postgres, wait (bounded) until it accepts connections."""
        self._check_binaries()
        self.base_dir = Path(tempfile.mkdtemp(prefix="softswitch-pg-"))
        try:
            if self._run_as is not None:
                user = pwd.getpwnam(self._run_as)
                os.chown(self.base_dir, user.pw_uid, user.pw_gid)
            self.base_dir.chmod(0o700)
            self._run(
                str(self.bin_dir / "initdb"),
                "-D", str(self.base_dir / "data"),
                "--username=postgres", "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._start_server()
                    return
                except PostgresUnavailable:
                    self._kill()
                    if attempt == _START_ATTEMPTS:
                        raise
        except BaseException:
            self.stop()
            raise

    def _start_server(self) -> None:
        assert self.base_dir is not None
        self.port = _free_port()
        settings = [] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]
        log_path = self.base_dir / "postgres.log"
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D", str(self.base_dir / "data"),
                    "-p", str(self.port),
                    "-h", "127.0.0.1",
                    "-k", str(self.base_dir),
                    "-c", "max_connections=50",
                    *settings,
                ],
                user=self._run_as,
                cwd=self.base_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self.process.returncode}: "
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                _run_sync(_probe(self.dsn))
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                last_error = exc
                time.sleep(0.1)
        raise PostgresUnavailable(
            f"postgres did not accept connections within {_START_TIMEOUT:.0f} s "
            f"({last_error!r}): {log_path.read_text(errors='replace')[-2000:]}"
        )

    def _kill(self) -> None:
        """Stop the server by its PID: SIGINT (fast shutdown), then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice."""
        self._kill()
        base_dir, self.base_dir = self.base_dir, None
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)


@contextlib.contextmanager
def postgres_dsn(database: str = "softswitch_test") -> Iterator[str]:
    """DSN of a test database: on SOFTSWITCH_TEST_PG_DSN if set, else on a private
    server started here and stopped on exit. Raises PostgresUnavailable."""
    dsn = external_dsn()
    if dsn is not None:
        yield dsn
        return
    with PostgresServer() as server:
        yield create_database(server.dsn, database)


def random_schema_name() -> str:
    """A fresh schema name for one test."""
    return f"t_{secrets.token_hex(6)}"
