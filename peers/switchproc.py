"""Running the switch as a real process for tests and benchmarks: config, start, stop by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port(kind: int = socket.SOCK_DGRAM, both: bool = True, span: int = 1) -> int:
    """A port above 10000 free for UDP and (if `both`) TCP on 127.0.0.1; with `span`, the
    next `span - 1` ports too (baresip binds its TLS listener on the SIP port + 1)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port <= 10000 or port + span > 65536:
            continue
        kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if both else (kind,)
        wanted = [(p, k) for p in range(port, port + span) for k in kinds if (p, k) != (port, kind)]
        if all(_bindable(p, k) for p, k in wanted):
            return port
    raise RuntimeError("no free port found")


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PhoneUser:
    extension: str
    password: str
    display_name: str = ""
    extra_toml: str = ""  # more keys of the user's table (e.g. can_monitor = true)


def numbered_users(count: int, first: int = 10000, password: str = "pw") -> list[PhoneUser]:
    return [PhoneUser(str(first + i), f"{password}{first + i}") for i in range(count)]


@dataclass
class SwitchConfigFile:
    """A configuration file for a test or bench switch listening on 127.0.0.1."""

    directory: Path
    port: int = field(default_factory=free_port)
    tls_port: int | None = None
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    domain: str = "pbx.test"
    users: Sequence[PhoneUser] = ()
    database_url: str | None = None
    algorithms: Sequence[str] = ("MD5",)
    min_expires: int = 60
    qualify_interval: float = 0
    log_level: str = "INFO"
    t1: float = 0.5
    media_anchor: str = "always"  # "never": SDP passes through (signalling-only benches)
    hold_music: Path | None = None
    extra_toml: str = ""  # appended to the [media] section (e.g. feature_codes = false)
    # Off by default: hundreds of short-lived switches would each synthesise the system
    # prompts (seconds of CPU) beside the measured or timed work.
    warm_prompts: bool = False
    tenant_toml: str = ""  # appended to the tenant (e.g. a [tenants.moh] table)
    # The [security] section. Load generators and test peers send from 127.0.0.1: it is
    # allow-listed as an operator's own SBC or load tester would be, so benches measure the
    # switch rather than the per-source flood limit (security tests set their own).
    security_toml: str = 'allow = ["127.0.0.1/32"]'

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        db = self.database_url or f"sqlite:///{self.directory / 'switch.db'}"
        if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
            db = "sqlite:///" + db[len("sqlite:///") :]
        listen = [
            f'{{ transport = "udp", host = "127.0.0.1", port = {self.port} }}',
            f'{{ transport = "tcp", host = "127.0.0.1", port = {self.port} }}',
        ]
        tls = ""
        if self.tls_port is not None:
            listen.append(f'{{ transport = "tls", host = "127.0.0.1", port = {self.tls_port} }}')
            tls = (
                f'tls_certificate = "{self.tls_certificate}"\n'
                f'tls_private_key = "{self.tls_private_key}"\n'
            )
        lines = [
            "[sip]",
            "listen = [" + ", ".join(listen) + "]",
            tls,
            "[sip.timers]",
            f"t1 = {self.t1}",
            f"t2 = {max(4.0, self.t1)}",
            "[registrar]",
            f"min_expires = {self.min_expires}",
            f"qualify_interval = {self.qualify_interval}",
            "[auth]",
            "algorithms = [" + ", ".join(json.dumps(a) for a in self.algorithms) + "]",
            "[database]",
            f"url = {json.dumps(db)}",
            "[logging]",
            f'level = "{self.log_level}"',
            f"file = {json.dumps(str(self.directory / 'switch.log'))}",
            "[media]",
            f'anchor = "{self.media_anchor}"',
            'address = "127.0.0.1"',
            f"recordings_dir = {json.dumps(str(self.directory / 'recordings'))}",
            f"hold_music = {json.dumps(str(self.hold_music))}" if self.hold_music else "",
            *self._prompts_toml(),
            "[security]",
            self.security_toml,
            "[[tenants]]",
            'name = "test"',
            f'domain = "{self.domain}"',
        ]
        for user in self.users:
            lines += [
                "[[tenants.users]]",
                f'extension = "{user.extension}"',
                f"password = {json.dumps(user.password)}",
                f"display_name = {json.dumps(user.display_name or 'User ' + user.extension)}",
                user.extra_toml,
            ]
        lines.append(self.tenant_toml)  # after the users, which it would otherwise end
        path = self.directory / "switch.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _prompts_toml(self) -> list[str]:
        """`extra_toml`, with `warm_at_start` in its [prompts] table or in one of its own."""
        warm = f"warm_at_start = {'true' if self.warm_prompts else 'false'}"
        if "[prompts]\n" in self.extra_toml:
            return [self.extra_toml.replace("[prompts]\n", f"[prompts]\n{warm}\n", 1)]
        return [self.extra_toml, "[prompts]", warm]


def options_ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> int | None:
    """Send one OPTIONS over UDP; the response status, or None without an answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{host}:{port}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()
        sock.settimeout(timeout)
        sock.sendto(message, (host, port))
        try:
            data, _ = sock.recvfrom(65535)
        except OSError:
            return None
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


class SwitchProcess:
    """The switch started as its own process (`softswitch run`), stopped by its PID."""

    def __init__(
        self,
        config: Path,
        *,
        cwd: Path | None = None,
        port: int,
        env: dict[str, str] | None = None,
        extra_args: Iterable[str] = (),
    ):
        self.config = config
        self.cwd = cwd or config.parent
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = self.cwd / "switch.out"

    def start(self, ready_timeout: float = 30.0) -> SwitchProcess:
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "softswitch.cli",
                    "run",
                    "--config",
                    str(self.config),
                    *self.extra_args,
                ],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"switch exited with {self.proc.returncode}:\n{self.log()}")
            if options_ping(self.port) == 200 and self._api_listening():
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"switch not ready within {ready_timeout}s:\n{self.log()}")

    def _api_listening(self) -> bool:
        """Whether the admin API, when the configuration enables it, takes connections: it
        starts after the SIP listeners, so answering OPTIONS does not mean it is up."""
        try:
            api = tomllib.loads(self.config.read_text()).get("api", {})
        except (OSError, tomllib.TOMLDecodeError):
            return True
        port = api.get("port") if isinstance(api, dict) and api.get("enabled") else None
        if not isinstance(port, int) or port == 0:
            return True
        try:
            socket.create_connection((str(api.get("host", "127.0.0.1")), port), 1).close()
        except OSError:
            return False
        return True

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM by PID (graceful: bindings flushed), SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.output.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def registrations(self) -> list[dict[str, object]]:
        """Bindings as `softswitch registrations --json` prints them."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "softswitch.cli",
                "registrations",
                "--json",
                "--config",
                str(self.config),
            ],
            cwd=self.cwd,
            capture_output=True,
            timeout=60,
            check=True,
            env=self.env,
        )
        rows: list[dict[str, object]] = json.loads(out.stdout)
        return rows

    def wait_registrations(
        self, predicate: Callable[[list[dict[str, object]]], bool], timeout: float = 10.0
    ) -> list[dict[str, object]]:
        """Poll the bindings (written behind, within a flush interval) until `predicate`."""
        deadline = time.monotonic() + timeout
        rows = self.registrations()
        while not predicate(rows) and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = self.registrations()
        return rows

    def __enter__(self) -> SwitchProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
