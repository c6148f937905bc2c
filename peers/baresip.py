"""Driving baresip as a desk-phone stand-in: config files, ctrl_tcp commands and events."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from peers.switchproc import free_port

MODULES = "/usr/lib/baresip/modules"


class BaresipMissing(RuntimeError):
    """baresip is not installed (Debian package `baresip-core`; `make test` installs it)."""


class BaresipPhone:
    """One baresip process with one account, controlled over ctrl_tcp (netstring JSON)."""

    def __init__(
        self,
        directory: Path,
        account: str,
        *,
        audio_source: Path | None = None,
        extra_config: list[str] | None = None,
        host: str = "127.0.0.1",
    ):
        if shutil.which("baresip") is None:
            raise BaresipMissing("baresip not found: install baresip-core (`make test` does)")
        self.directory = directory
        self.account = account
        self.sip_port = free_port(span=2)  # SIP on UDP/TCP, TLS on the next port
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.cons_port = free_port()
        rtp = free_port()
        self.audio_source = audio_source
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "rec").mkdir(exist_ok=True)
        lines = [
            f"sip_listen {host}:{self.sip_port}",  # host: the phone's own loopback address
            f"audio_source aufile,{audio_source}" if audio_source else "",
            "audio_player aubridge,x",
            "audio_alert aubridge,x",
            f"rtp_ports {rtp}-{rtp + 19}",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module cons.so",
            "module_tmp uuid.so",
            "module_tmp account.so",
            "module_app contact.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            f"cons_listen 127.0.0.1:{self.cons_port}",
            f"snd_path {directory / 'rec'}",
            "sip_trans_def udp",
            *(extra_config or []),
        ]
        (directory / "config").write_text("\n".join(x for x in lines if x) + "\n")
        (directory / "accounts").write_text(account + "\n")
        (directory / "contacts").write_text("")
        self.proc: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        self._token = 0

    def start(self, timeout: float = 15.0) -> BaresipPhone:
        if not self._loads_mwi():
            return self._start(timeout)
        # baresip 1.0.0's mwi module walks its list of subscriptions from a start-up timer
        # (1 ms after loading) and subscribes once per entry, which appends to that same
        # list: if the account registers before the timer fires, the walk never ends and
        # the phone prints "subscribing" forever and sends nothing. Seen in CI on a loaded
        # machine, six fresh starts in a row. So a phone with mwi starts with no account,
        # lets the timer fire on the empty list (a ctrl_tcp answer proves the main loop has
        # turned), and only then adds its account, which registers and subscribes once.
        (self.directory / "accounts").write_text("")
        self._start(timeout)
        self.request("reginfo", timeout=timeout)
        self.request("uanew", self.account, timeout=timeout)
        return self

    def _loads_mwi(self) -> bool:
        return "mwi.so" in (self.directory / "config").read_text()

    def request(self, command: str, params: str = "", timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and wait for its ctrl_tcp answer."""
        self.command(command, params)
        token = str(self._token)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("response") and event.get("token") == token:
                    self.events.remove(event)
                    if not event.get("ok", True):
                        raise RuntimeError(f"baresip refused {command}: {event}")
                    return event
            self.poll_events(0.2)
        raise TimeoutError(f"baresip did not answer {command} within {timeout}s:\n{self.output()}")

    def _start(self, timeout: float) -> BaresipPhone:
        output = self.directory / "baresip.out"
        with output.open("ab") as out:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.directory)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._ctrl = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                self._ctrl.settimeout(0.2)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"baresip did not start:\n{self.output()}")

    def output(self) -> str:
        try:
            return (self.directory / "baresip.out").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def command(self, command: str, params: str = "") -> None:
        assert self._ctrl is not None
        self._token += 1
        payload = json.dumps({"command": command, "params": params, "token": str(self._token)})
        data = payload.encode()
        self._ctrl.sendall(str(len(data)).encode() + b":" + data + b",")

    def poll_events(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        """Read whatever events arrived within `timeout`; all are kept in `events`."""
        assert self._ctrl is not None
        deadline = time.monotonic() + timeout
        new: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                chunk = self._ctrl.recv(65536)
            except TimeoutError:
                chunk = b""
            except OSError:
                break
            if chunk:
                self._buffer += chunk
            while b":" in self._buffer:
                length, _, rest = self._buffer.partition(b":")
                if not length.isdigit() or len(rest) < int(length) + 1:
                    break
                body, self._buffer = rest[: int(length)], rest[int(length) + 1 :]
                try:
                    new.append(json.loads(body))
                except ValueError:
                    continue
            if not chunk and new:
                break
        self.events.extend(new)
        return new

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if event.get("type") == kind:
                    self.events.remove(event)
                    return event
            seen = 0
            self.poll_events(0.2)
        raise TimeoutError(f"no {kind} event within {timeout}s; events: {self.events[-10:]}")

    def send_dtmf(self, digits: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for digit in digits:
                sock.sendto(digit.encode(), ("127.0.0.1", self.cons_port))
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop by PID (`quit` can wait ~30 s for an un-REGISTER when the registrar is gone)."""
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """Vanish without un-registering, as a phone that loses power or network."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.stop()

    def __enter__(self) -> BaresipPhone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
