"""pjsip (PyPI `pjsua2-python`) as a real SIP peer: an in-process pjsua2 endpoint, and a worker
process hosting one so a test survives pjsip's aborts and gets a fresh library per run.

pjsua is a process-wide singleton, single-threaded here (threadCnt=0, mainThreadOnly, polled with
libHandleEvents): a `PjsuaEndpoint` must be created, polled and shut down on one thread. It holds
at most `MAX_ACCOUNTS` accounts: pjsua asserts (aborts the process) on one more, so the limit is
enforced here with a clear error. Many users therefore take several endpoint lifetimes, which the
worker (`python -m peers.pjsua`, driven by `PjsuaWorker`) runs one after another.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pjsua2 as pj

from peers.switchproc import free_port

# pjsua's PJSUA_MAX_ACC as compiled into the pjsua2-python 2.15.1 wheel (found by adding
# accounts until pjsua_acc_add's assertion aborted the process at the 9th).
MAX_ACCOUNTS = 8

ROOT = Path(__file__).resolve().parent.parent

_AUTH_LINE = re.compile(
    r"^(Authorization|Proxy-Authorization|WWW-Authenticate|Proxy-Authenticate)\s*:\s*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_NAMES = {
    n.lower(): n
    for n in ("Authorization", "Proxy-Authorization", "WWW-Authenticate", "Proxy-Authenticate")
}
_PARAM = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')


class PjsuaError(RuntimeError):
    """pjsua2 refused an operation, or the worker process failed or went silent."""


@dataclass(frozen=True)
class DigestHeader:
    """One digest header seen on the wire (`sent` = an Authorization pjsip produced)."""

    header: str
    sent: bool
    username: str | None
    realm: str | None
    algorithm: str  # RFC 7616 3.3: absent means MD5


def parse_digest_headers(text: str, sent: bool) -> list[DigestHeader]:
    """The digest challenge/credential headers in one logged SIP message."""
    headers = []
    for name, value in _AUTH_LINE.findall(text):
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            continue
        params = {k.lower(): v.strip('"') for k, v in _PARAM.findall(rest)}
        headers.append(
            DigestHeader(
                header=_HEADER_NAMES[name.lower()],
                sent=sent,
                username=params.get("username"),
                realm=params.get("realm"),
                algorithm=params.get("algorithm", "MD5").upper(),
            )
        )
    return headers


@dataclass
class RegistrationOutcome:
    """Where one account's registration (or un-registration) ended."""

    username: str
    aor: str
    code: int  # last final status pjsua reported; 0 = none yet
    reason: str
    active: bool  # pjsua holds a binding (the registrar said 2xx with expires > 0)
    expires: int


def _message_direction(text: str) -> bool | None:
    """True for a message pjsip sent, False for one it received, None for other log lines."""
    head = text[:200]
    if "TX " in head and "msg" in head:
        return True
    if "RX " in head and "msg" in head:
        return False
    return None


class _LogSink(pj.LogWriter):
    """pjsip's log, line by line, into a Python callable (kept alive by the endpoint)."""

    def __init__(self, sink: Callable[[str], None]):
        super().__init__()
        self._sink = sink

    def write(self, entry: Any) -> None:
        self._sink(str(entry.msg))


class PjsuaEndpoint:
    """An in-process pjsua2 Endpoint bound to 127.0.0.1 on one UDP and TCP port (> 10000).

    Use as a context manager or call `start()`/`shutdown()`; shutdown deletes accounts before
    `libDestroy()` (pjsua2 crashes otherwise). Every message pjsip logs is scanned for digest
    headers, so a test can see which algorithm pjsip really answered with.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        log_level: int = 4,
        keep_log_lines: int = 400,
        clock_rate: int | None = None,
    ):
        self.port = port
        self.clock_rate = clock_rate  # the conference bridge's (and so recordings') rate
        self.log_level = log_level
        self.digest_headers: list[DigestHeader] = []
        self.log_tail: deque[str] = deque(maxlen=keep_log_lines)
        self._ep: Any = None
        self._writer: Any = None
        self._transports: dict[str, int] = {}
        self.accounts: list[PjsuaAccount] = []

    # -- lifetime ------------------------------------------------------------------------------

    def start(self) -> PjsuaEndpoint:
        """Create, initialise and start the library, with UDP and TCP transports on one port."""
        self._writer = _LogSink(self._on_log)
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        try:
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 0
            cfg.uaConfig.mainThreadOnly = True
            cfg.uaConfig.userAgent = "pjsua2-python bench"
            cfg.logConfig.level = self.log_level
            cfg.logConfig.consoleLevel = self.log_level
            cfg.logConfig.msgLogging = True
            cfg.logConfig.writer = self._writer
            cfg.medConfig.noVad = True
            if self.clock_rate is not None:
                cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = self.clock_rate
            ep.libInit(cfg)
            fixed = self.port is not None
            for _ in range(1 if fixed else 20):
                port = self.port if self.port is not None else free_port()
                try:
                    for kind, name in (
                        (pj.PJSIP_TRANSPORT_UDP, "udp"),
                        (pj.PJSIP_TRANSPORT_TCP, "tcp"),
                    ):
                        tc = pj.TransportConfig()
                        tc.port = port
                        tc.boundAddress = "127.0.0.1"
                        tc.publicAddress = "127.0.0.1"
                        self._transports[name] = ep.transportCreate(kind, tc)
                except pj.Error as exc:
                    # Someone took the port between probe and bind: close and try another.
                    for tid in self._transports.values():
                        ep.transportClose(tid)
                    self._transports.clear()
                    if fixed:
                        raise PjsuaError(f"cannot bind port {port}: {exc.info()}") from exc
                    continue
                self.port = port
                break
            else:
                raise PjsuaError("no free UDP/TCP port for pjsua")
            ep.libStart()
            ep.audDevManager().setNullDev()
        except BaseException:
            self._destroy()
            raise
        return self

    def shutdown(self, timeout: float = 5.0) -> None:
        """Un-register (waiting up to `timeout` for the answers), delete every account, then
        destroy the library (pjsua2 crashes if accounts outlive it)."""
        if self._ep is None:
            return
        try:
            self.unregister_all(timeout)
        finally:
            for account in self.accounts:
                account.shutdown()
            self.accounts.clear()
            # Nothing is left on the network, so skip pjsua's own un-register pass and its
            # fixed one-second wait for answers.
            self._destroy(pj.PJSUA_DESTROY_NO_NETWORK)

    def _destroy(self, flags: int = 0) -> None:
        ep, self._ep = self._ep, None
        self._transports.clear()
        if ep is not None:
            ep.libDestroy(flags)
        self._writer = None

    def __enter__(self) -> PjsuaEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- events --------------------------------------------------------------------------------

    def _on_log(self, text: str) -> None:
        self.log_tail.append(text)
        direction = _message_direction(text)
        if direction is not None:
            self.digest_headers.extend(parse_digest_headers(text, sent=direction))

    def poll(self, msec: int = 10) -> None:
        """Run pjsip's timers and sockets for up to `msec` milliseconds."""
        if self._ep is None:
            raise PjsuaError("endpoint not started")
        self._ep.libHandleEvents(msec)

    def poll_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll until `predicate()` holds or `timeout` seconds pass; whether it held."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            self.poll(10)
        return True

    # -- accounts ------------------------------------------------------------------------------

    def add_account(
        self,
        username: str,
        password: str,
        registrar: str,
        *,
        domain: str | None = None,
        realm: str = "*",
        transport: str = "udp",
        expires: int = 300,
        register: bool = True,
    ) -> PjsuaAccount:
        """An account `sip:username@domain` registering at `registrar` ("host:port").

        The credentials hold the plain password so pjsip can answer any digest algorithm the
        registrar offers. Raises PjsuaError beyond MAX_ACCOUNTS or for an unknown transport.
        """
        if self._ep is None:
            raise PjsuaError("endpoint not started")
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise PjsuaError(f"pjsua holds at most {MAX_ACCOUNTS} accounts per endpoint")
        if transport not in self._transports:
            raise PjsuaError(f"unknown transport {transport!r}")
        aor = f"sip:{username}@{domain or registrar}"
        cfg = pj.AccountConfig()
        cfg.idUri = aor
        cfg.regConfig.registrarUri = f"sip:{registrar};transport={transport}"
        cfg.regConfig.timeoutSec = expires
        cfg.regConfig.retryIntervalSec = 0  # a refused account stays refused: no retry storm
        cfg.regConfig.registerOnAdd = register
        cfg.sipConfig.transportId = self._transports[transport]
        cfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", realm, username, pj.PJSIP_CRED_DATA_PLAIN_PASSWD, password)
        )
        account = PjsuaAccount(username, aor)
        try:
            account.create(cfg)
        except pj.Error as exc:
            raise PjsuaError(f"account {aor}: {exc.info()}") from exc
        self.accounts.append(account)
        return account

    def register_all(
        self,
        users: Iterable[tuple[str, str]],
        registrar: str,
        *,
        domain: str | None = None,
        transport: str = "udp",
        expires: int = 300,
        timeout: float = 10.0,
    ) -> list[RegistrationOutcome]:
        """Add one account per (username, password) and wait for each final answer."""
        users = list(users)
        if len(self.accounts) + len(users) > MAX_ACCOUNTS:
            raise PjsuaError(
                f"{len(users)} more accounts would exceed pjsua's "
                f"{MAX_ACCOUNTS} per endpoint ({len(self.accounts)} held)"
            )
        added = [
            self.add_account(u, p, registrar, domain=domain, transport=transport, expires=expires)
            for u, p in users
        ]
        self.poll_until(lambda: all(a.code >= 200 for a in added), timeout)
        return [a.outcome() for a in added]

    def unregister_all(self, timeout: float = 10.0) -> list[RegistrationOutcome]:
        """Un-register every active account (Expires: 0) and wait for the final answers."""
        pending = []
        for account in self.accounts:
            if account.getInfo().regIsActive:
                account.code = 0
                try:
                    account.setRegistration(False)
                except pj.Error as exc:
                    raise PjsuaError(f"un-register {account.aor}: {exc.info()}") from exc
                pending.append(account)
        self.poll_until(lambda: all(a.code >= 200 for a in pending), timeout)
        return [a.outcome() for a in self.accounts]


class PjsuaAccount(pj.Account):
    """A pjsua2 Account remembering the last registration answer (onRegState)."""

    def __init__(self, username: str, aor: str):
        super().__init__()
        self.username = username
        self.aor = aor
        self.code = 0
        self.reason = ""
        self.expires = 0

    def onRegState(self, prm: Any) -> None:
        if int(prm.code) >= 200:
            self.code = int(prm.code)
            self.reason = str(prm.reason)
            self.expires = int(prm.expiration)

    def outcome(self) -> RegistrationOutcome:
        info = self.getInfo()
        return RegistrationOutcome(
            self.username,
            self.aor,
            self.code,
            self.reason,
            bool(info.regIsActive),
            int(info.regExpiresSec) if info.regIsActive else 0,
        )


# -- worker process ----------------------------------------------------------------------------


@dataclass
class UnregisterReport:
    """What one endpoint lifetime ended with: un-registration outcomes and the digest headers
    pjsip sent and received during the lifetime."""

    outcomes: list[RegistrationOutcome]
    digest_headers: list[DigestHeader] = field(default_factory=list)

    def sent_algorithms(self) -> dict[str, set[str]]:
        """username -> algorithms in the Authorization headers pjsip sent for it."""
        result: dict[str, set[str]] = {}
        for h in self.digest_headers:
            if h.sent and h.username is not None:
                result.setdefault(h.username, set()).add(h.algorithm)
        return result

    def offered_algorithms(self) -> set[str]:
        """Algorithms the registrar challenged with."""
        return {h.algorithm for h in self.digest_headers if not h.sent}


def _serve(commands: Iterable[str], reply: Callable[[dict[str, Any]], None]) -> None:
    """The worker loop: one JSON command per line, one JSON reply per command.

    `register` starts an endpoint lifetime (if none) and registers users; `unregister`
    un-registers everyone and ends the lifetime; `quit` stops.
    """
    endpoint: PjsuaEndpoint | None = None
    try:
        for line in commands:
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                op = cmd.get("op")
                if op == "register":
                    if endpoint is None:
                        endpoint = PjsuaEndpoint().start()
                    outcomes = endpoint.register_all(
                        [(str(u), str(p)) for u, p in cmd["users"]],
                        str(cmd["registrar"]),
                        domain=cmd.get("domain"),
                        transport=cmd.get("transport", "udp"),
                        expires=int(cmd.get("expires", 300)),
                        timeout=float(cmd.get("timeout", 10.0)),
                    )
                    reply({"ok": True, "outcomes": [asdict(o) for o in outcomes]})
                elif op == "unregister":
                    if endpoint is None:
                        reply({"ok": True, "outcomes": [], "digest_headers": []})
                        continue
                    outcomes = endpoint.unregister_all(float(cmd.get("timeout", 10.0)))
                    headers = endpoint.digest_headers
                    endpoint.shutdown()
                    endpoint = None
                    reply(
                        {
                            "ok": True,
                            "outcomes": [asdict(o) for o in outcomes],
                            "digest_headers": [asdict(h) for h in headers],
                        }
                    )
                elif op == "quit":
                    reply({"ok": True})
                    return
                else:
                    reply({"ok": False, "error": f"unknown op {op!r}"})
            except (PjsuaError, ValueError, KeyError, TypeError) as exc:
                tail = list(endpoint.log_tail)[-20:] if endpoint is not None else []
                reply({"ok": False, "error": f"{type(exc).__name__}: {exc}", "log": tail})
    finally:
        if endpoint is not None:
            endpoint.shutdown()


def main() -> int:
    """Worker entry point: JSON commands on stdin, JSON replies on the original stdout."""
    # pjlib prints to fd 1 on its own (before a log writer exists): keep the protocol on a
    # private copy of stdout and send everything else to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    _serve(sys.stdin, reply)
    return 0


class PjsuaWorker:
    """A `python -m peers.pjsua` process hosting pjsua endpoints, one lifetime at a time.

    pjsua aborts the whole process on some misuse (too many accounts, calls from a foreign
    thread): keeping it out of the test process confines that, and each worker starts with a
    fresh library.
    """

    def __init__(self, *, stderr_path: Path | None = None, reply_timeout: float = 30.0):
        self.reply_timeout = reply_timeout
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None

    def start(self) -> PjsuaWorker:
        """Start the worker process."""
        self._stderr = (
            self.stderr_path.open("a") if self.stderr_path is not None else subprocess.DEVNULL
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peers.pjsua"],
            cwd=ROOT,
            text=True,
            bufsize=1,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        return self

    def _call(self, command: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise PjsuaError("worker not started")
        if proc.poll() is not None:
            raise PjsuaError(f"worker exited with {proc.returncode}")
        try:
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
        except OSError as exc:
            raise PjsuaError(f"worker gone: {exc}") from exc
        ready, _, _ = select.select([proc.stdout], [], [], timeout or self.reply_timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            self.kill()
            raise PjsuaError(
                f"worker did not answer {command.get('op')!r} (exit code {proc.returncode})"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise PjsuaError(f"{answer.get('error')}\n" + "\n".join(answer.get("log", [])))
        return answer

    def register(
        self,
        users: Sequence[tuple[str, str]],
        registrar: str,
        *,
        domain: str | None = None,
        transport: str = "udp",
        expires: int = 300,
        timeout: float = 10.0,
    ) -> list[RegistrationOutcome]:
        """Register up to MAX_ACCOUNTS (username, password) pairs in the current lifetime."""
        answer = self._call(
            {
                "op": "register",
                "users": [list(u) for u in users],
                "registrar": registrar,
                "domain": domain,
                "transport": transport,
                "expires": expires,
                "timeout": timeout,
            },
            timeout + 20,
        )
        return [RegistrationOutcome(**o) for o in answer["outcomes"]]

    def unregister(self, timeout: float = 10.0) -> UnregisterReport:
        """Un-register everyone and end the endpoint lifetime."""
        answer = self._call({"op": "unregister", "timeout": timeout}, timeout + 20)
        return UnregisterReport(
            [RegistrationOutcome(**o) for o in answer["outcomes"]],
            [DigestHeader(**h) for h in answer["digest_headers"]],
        )

    def close(self, timeout: float = 20.0) -> None:
        """Ask the worker to quit (its endpoint un-registers), kill it if it does not."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._call({"op": "quit"}, timeout)
                self.proc.wait(timeout)
            except (PjsuaError, subprocess.TimeoutExpired):
                self.kill()
        if self._stderr not in (None, subprocess.DEVNULL):
            self._stderr.close()

    def kill(self) -> None:
        """Kill the worker by its PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> PjsuaWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
