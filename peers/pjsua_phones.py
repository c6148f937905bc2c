"""Desk phones played by pjsua2: several accounts of one pjsua endpoint that register, make
and answer calls, play a tone WAV into every call and record what each call hears, put a
call on hold and take it off, and transfer (blind, or attended: REFER with Replaces).

baresip 1.0 has no attended transfer; pjsip's ``Call.xferReplaces`` is what a desk phone's
"transfer after talking to the target" sends. The phones live in a worker process
(``python -m peers.pjsua_phones``, driven by `PhoneWorker`): pjsua is a single-threaded
process-wide singleton that must be polled all the time a call is up, and a pjsip abort
then ends the worker, not the test. Every call gets a number of our own (pjsua reuses its
ids); `PhoneWorker.calls()` reports each one's state, and a test waits on those.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pjsua2 as pj

from peers.pjsua import ROOT, PjsuaAccount, PjsuaEndpoint, PjsuaError

__all__ = ["CallState", "PhoneWorker"]

_STATES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}


@dataclass
class CallState:
    """One call of one phone as the test sees it."""

    number: int  # ours, unique for the worker's life
    phone: str  # the account's user
    incoming: bool
    remote: str  # the remote URI
    state: str  # pjsua's invite state: calling, early, confirmed, disconnected...
    status: int  # last SIP status pjsua reported for the call
    media: bool  # audio flows (active, not held)
    recording: str  # the WAV of what this call heard ("" before media)
    transfer_status: int  # the last NOTIFY sipfrag status of a transfer this call sent


class _Call(pj.Call):
    """A pjsua call that plays its phone's tone and records what it hears."""

    def __init__(self, phone: _Phone, number: int, incoming: bool, call_id: int | None = None):
        if call_id is None:
            super().__init__(phone)
        else:
            super().__init__(phone, call_id)
        self.phone = phone
        self.number = number
        self.incoming = incoming
        self.state = "null"
        self.status = 0
        self.remote = ""
        self.media = False
        self.recording = ""
        self.transfer_status = 0
        self._player: Any = None
        self._recorder: Any = None

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.state = _STATES.get(info.state, str(info.state))
        self.status = int(info.lastStatusCode)
        self.remote = str(info.remoteUri)
        if self.state == "disconnected":
            self.media = False

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        active = False
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = pj.AudioMedia.typecastFromMedia(self.getMedia(index))
            self._connect(audio)
            active = True
        self.media = active

    def _connect(self, audio: Any) -> None:
        phone = self.phone
        if self._recorder is None:
            self.recording = str(phone.record_dir / f"{phone.username}-{self.number}.wav")
            self._recorder = pj.AudioMediaRecorder()
            self._recorder.createRecorder(self.recording)
        if self._player is None and phone.tone:
            self._player = pj.AudioMediaPlayer()
            self._player.createPlayer(phone.tone)  # loops
        audio.startTransmit(self._recorder)
        if self._player is not None:
            self._player.startTransmit(audio)

    def onCallTransferStatus(self, prm: Any) -> None:
        self.transfer_status = int(prm.statusCode)

    def release(self) -> None:
        """Drop the player and recorder (the WAV is complete afterwards)."""
        self._player = None
        self._recorder = None

    def report(self) -> CallState:
        return CallState(
            self.number,
            self.phone.username,
            self.incoming,
            self.remote,
            self.state,
            self.status,
            self.media,
            self.recording,
            self.transfer_status,
        )


class _Phone(PjsuaAccount):
    """An account that keeps its incoming calls (answered by the test, or automatically)."""

    def __init__(self, phones: Phones, username: str, aor: str, tone: str, record_dir: Path):
        super().__init__(username, aor)
        self.phones = phones
        self.tone = tone
        self.record_dir = record_dir
        self.auto_answer = False

    def onIncomingCall(self, prm: Any) -> None:
        call = self.phones.adopt(self, prm.callId)
        ringing = pj.CallOpParam()
        ringing.statusCode = 200 if self.auto_answer else 180
        call.answer(ringing)


class Phones:
    """The worker's phones: one pjsua endpoint, an account per phone, every call kept."""

    def __init__(self, record_dir: Path) -> None:
        self.record_dir = record_dir
        self.endpoint = PjsuaEndpoint(clock_rate=8000, log_level=3).start()
        self.phones: dict[str, _Phone] = {}
        self.calls: dict[int, _Call] = {}
        self._numbers = 0

    def _number(self) -> int:
        self._numbers += 1
        return self._numbers

    def adopt(self, phone: _Phone, call_id: int) -> _Call:
        call = _Call(phone, self._number(), True, call_id)
        call.remote = str(call.getInfo().remoteUri)
        call.state = "incoming"
        self.calls[call.number] = call
        return call

    def register(
        self, users: list[tuple[str, str, str]], registrar: str, domain: str, timeout: float
    ) -> list[dict[str, Any]]:
        """Add a phone per (user, password, tone WAV) and wait for the registrations."""
        endpoint = self.endpoint
        added = []
        for username, password, tone in users:
            cfg = pj.AccountConfig()
            cfg.idUri = f"sip:{username}@{domain}"
            cfg.regConfig.registrarUri = f"sip:{registrar};transport=udp"
            cfg.regConfig.timeoutSec = 300
            cfg.regConfig.retryIntervalSec = 0
            cfg.sipConfig.transportId = endpoint._transports["udp"]
            cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", username, pj.PJSIP_CRED_DATA_PLAIN_PASSWD, password)
            )
            # The proxy: calls go to the switch whatever the URI's host says.
            cfg.sipConfig.proxies.append(f"sip:{registrar};lr")
            phone = _Phone(self, username, cfg.idUri, tone, self.record_dir)
            try:
                phone.create(cfg)
            except pj.Error as exc:
                raise PjsuaError(f"phone {username}: {exc.info()}") from exc
            endpoint.accounts.append(phone)
            self.phones[username] = phone
            added.append(phone)
        endpoint.poll_until(lambda: all(a.code >= 200 for a in added), timeout)
        return [asdict(a.outcome()) for a in added]

    def call(self, phone: str, uri: str) -> int:
        """``phone`` calls ``uri``; the call's number."""
        call = _Call(self.phones[phone], self._number(), False)
        self.calls[call.number] = call
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except pj.Error as exc:
            raise PjsuaError(f"{phone} calling {uri}: {exc.info()}") from exc
        return call.number

    def answer(self, number: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = 200
        self.calls[number].answer(prm)

    def hold(self, number: int) -> None:
        self.calls[number].setHold(pj.CallOpParam(True))

    def unhold(self, number: int) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.calls[number].reinvite(prm)

    def transfer(self, number: int, to: int | str) -> None:
        """REFER on call ``number``: to a URI (blind) or, attended, to the party of our
        call ``to`` (Refer-To with that dialog in Replaces)."""
        call = self.calls[number]
        try:
            if isinstance(to, int):
                call.xferReplaces(self.calls[to], pj.CallOpParam(True))
            else:
                call.xfer(to, pj.CallOpParam(True))
        except pj.Error as exc:
            raise PjsuaError(f"transfer of call {number}: {exc.info()}") from exc

    def hangup(self, number: int) -> None:
        call = self.calls[number]
        if call.state != "disconnected":
            call.hangup(pj.CallOpParam(True))

    def report(self) -> list[dict[str, Any]]:
        return [asdict(c.report()) for c in self.calls.values()]

    def close(self) -> None:
        for call in self.calls.values():
            if call.state not in ("disconnected", "null"):
                with contextlib.suppress(pj.Error):  # already gone
                    call.hangup(pj.CallOpParam(True))
        self.endpoint.poll_until(
            lambda: all(c.state in ("disconnected", "null") for c in self.calls.values()), 3.0
        )
        for call in self.calls.values():
            call.release()
        self.calls.clear()  # pjsua2 needs its Call objects gone before libDestroy
        self.endpoint.shutdown()


def _serve(record_dir: Path, reply: Callable[[dict[str, Any]], None]) -> None:
    """One JSON command per stdin line, one JSON reply each; pjsua polled in between."""
    phones = Phones(record_dir)
    buffer = b""
    try:
        while True:
            ready, _, _ = select.select([sys.stdin.fileno()], [], [], 0)
            if not ready:
                phones.endpoint.poll(10)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip() and not _command(phones, json.loads(line), reply):
                    return
    finally:
        phones.close()


def _command(phones: Phones, cmd: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> bool:
    """Run one command; False once told to quit."""
    op = cmd.get("op")
    try:
        if op == "register":
            users = [(str(u), str(p), str(t)) for u, p, t in cmd["users"]]
            outcomes = phones.register(
                users, str(cmd["registrar"]), str(cmd["domain"]), float(cmd["timeout"])
            )
            reply({"ok": True, "outcomes": outcomes})
        elif op == "call":
            reply({"ok": True, "call": phones.call(str(cmd["phone"]), str(cmd["uri"]))})
        elif op in ("answer", "hold", "unhold", "hangup"):
            getattr(phones, op)(int(cmd["call"]))
            reply({"ok": True})
        elif op == "transfer":
            phones.transfer(int(cmd["call"]), cmd["to"])
            reply({"ok": True})
        elif op == "calls":
            reply({"ok": True, "calls": phones.report()})
        elif op == "quit":
            reply({"ok": True})
            return False
        else:
            reply({"ok": False, "error": f"unknown op {op!r}"})
    except (PjsuaError, pj.Error, KeyError, ValueError, TypeError) as exc:
        detail = exc.info() if isinstance(exc, pj.Error) else str(exc)
        reply({"ok": False, "error": f"{type(exc).__name__}: {detail}"})
    return True


def main() -> int:
    """Worker entry point: ``python -m peers.pjsua_phones RECORD_DIR``."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # pjlib prints to fd 1 on its own: keep the protocol on a private copy
    sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    _serve(Path(sys.argv[1]), reply)
    return 0


class PhoneWorker:
    """A `python -m peers.pjsua_phones` process holding up to eight pjsua phones."""

    def __init__(self, record_dir: Path, *, reply_timeout: float = 20.0) -> None:
        self.record_dir = record_dir
        self.reply_timeout = reply_timeout
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None

    def start(self) -> PhoneWorker:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = (self.record_dir / "pjsua.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peers.pjsua_phones", str(self.record_dir)],
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
            raise PjsuaError(f"worker did not answer {command.get('op')!r}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise PjsuaError(str(answer.get("error")))
        return answer

    def register(
        self,
        users: list[tuple[str, str, Path | None]],
        registrar: str,
        domain: str,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Phones for (user, password, tone WAV or None); their registration outcomes."""
        rows = [[u, p, str(t) if t else ""] for u, p, t in users]
        command = {"op": "register", "users": rows, "registrar": registrar, "domain": domain}
        outcomes: list[dict[str, Any]] = self._call(command | {"timeout": timeout}, timeout + 10)[
            "outcomes"
        ]
        return outcomes

    def call(self, phone: str, uri: str) -> int:
        """``phone`` dials ``uri``; our number of the call."""
        number: int = self._call({"op": "call", "phone": phone, "uri": uri})["call"]
        return number

    def answer(self, call: int) -> None:
        self._call({"op": "answer", "call": call})

    def hold(self, call: int) -> None:
        self._call({"op": "hold", "call": call})

    def unhold(self, call: int) -> None:
        self._call({"op": "unhold", "call": call})

    def hangup(self, call: int) -> None:
        self._call({"op": "hangup", "call": call})

    def transfer(self, call: int, to: int | str) -> None:
        """Blind (``to`` a URI) or attended (``to`` our other call) transfer of ``call``."""
        self._call({"op": "transfer", "call": call, "to": to})

    def calls(self) -> dict[int, CallState]:
        return {c["number"]: CallState(**c) for c in self._call({"op": "calls"})["calls"]}

    def wait(
        self, what: str, predicate: Callable[[dict[int, CallState]], bool], timeout: float = 15.0
    ) -> dict[int, CallState]:
        """Poll the calls until ``predicate`` holds; PjsuaError naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()
            if predicate(calls):
                return calls
            if time.monotonic() >= deadline:
                raise PjsuaError(f"{what}: not reached; calls: {list(calls.values())}")
            time.sleep(0.1)

    def close(self, timeout: float = 15.0) -> None:
        """Hang up, un-register and quit (killed by PID if it does not)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._call({"op": "quit"}, timeout)
                self.proc.wait(timeout)
            except (PjsuaError, subprocess.TimeoutExpired):
                self.kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> PhoneWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
