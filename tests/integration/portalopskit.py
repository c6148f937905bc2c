"""The switch of the portal's operations tests: one tenant (acme, extensions 100-103), a
carrier trunk whose gateway is a SIPp UAS, three DIDs, a disaster plan, a call queue
(agents 101 and 102), recordings in a folder of the test's, and finished calls with trunks,
media quality and a recording."""

from __future__ import annotations

import time
import wave
from pathlib import Path

from config.models import SwitchConfig
from storage.queue_events import QueueEvent
from tests.integration.apikit import TENANT_A, LiveApi, api_config, cdr

DID = "+14155550100"  # -> user 102; in plan "Office outage" (-> OUTAGE_FORWARD)
SPARE_DIDS = ("+14155550101", "+14155550102")
OUTAGE_FORWARD = "+12125550199"


def ops_config(database_url: str, gateway: int, recordings: Path) -> SwitchConfig:
    """api_config's first tenant alone (SIPp reaches the switch by IP: one tenant owns it)
    with the carrier trunk on 127.0.0.1:``gateway`` and recordings under ``recordings``."""
    base = api_config(database_url).model_dump()
    tenant = base["tenants"][0]
    tenant["routing"]["dids"] = [
        {"number": DID, "treatment": "user", "destination": "102"},
        *({"number": n, "treatment": "user", "destination": "103"} for n in SPARE_DIDS),
    ]
    tenant["trunks"] = [
        {
            "name": "carrier",
            "inbound_addresses": ["127.0.0.0/8"],
            "gateways": [{"host": "127.0.0.1", "port": gateway}],
        }
    ]
    tenant["queues"] = [
        {
            "name": "support",
            "extension": "150",
            "agents": [{"extension": "101"}, {"extension": "102"}],
        }
    ]
    base["tenants"] = [tenant]
    base["media"]["recordings_dir"] = str(recordings)
    base["prompts"]["directory"] = str(recordings.parent / "prompts")  # music-on-hold uploads
    return SwitchConfig.model_validate(base)


def _quality(mos: float, jitter_ms: float, loss: float) -> dict[str, object]:
    side = {"mos": mos, "jitter_ms": jitter_ms, "loss": loss, "packets": 500, "codec": "PCMU"}
    return {"caller": side, "callee": side}


def write_wav(path: Path, seconds: float = 0.5) -> Path:
    """A silent 8 kHz mono WAV (what a recording looks like on disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return path


def add_queue_events(live: LiveApi) -> None:
    """The queue log of a busy moment: agent 101 available and offered a waiting caller,
    an earlier caller answered by 101 and completed, one who gave up."""
    assert live.switch is not None
    now = time.time()
    q = {"tenant": TENANT_A, "queue": "support"}
    events = [
        QueueEvent(
            event="agent_status", at=now - 900, agent="101", reason="available", tenant=TENANT_A
        ),
        QueueEvent(event="entered", at=now - 600, call_id="c-1", **q),
        QueueEvent(event="offered", at=now - 598, call_id="c-1", agent="101", **q),
        QueueEvent(event="answered", at=now - 590, call_id="c-1", agent="101", **q),
        QueueEvent(event="completed", at=now - 500, call_id="c-1", agent="101", **q),
        QueueEvent(event="entered", at=now - 400, call_id="c-2", **q),
        QueueEvent(event="abandoned", at=now - 300, call_id="c-2", **q),
        QueueEvent(event="entered", at=now - 30, call_id="c-3", **q),
        QueueEvent(event="offered", at=now - 29, call_id="c-3", agent="101", **q),
    ]
    live.call(live.switch.store.append_queue_events(events))


def add_history(live: LiveApi, recordings: Path) -> None:
    """Finished calls: internal ones, inbound and outbound over "carrier" with quality
    figures, one unanswered, one recorded (``rec-call``)."""
    now = time.time()
    wav = write_wav(recordings / TENANT_A / "rec-call-1.wav")
    live.add_cdrs(
        [
            cdr("int-1", TENANT_A, "101", "102", start=now - 600),
            cdr("int-2", TENANT_A, "102", "103", start=now - 3 * 3600, answered=False),
            cdr(
                "in-1",
                TENANT_A,
                "+12125550111",
                DID,
                start=now - 2 * 3600,
                direction="inbound",
                trunk="carrier",
                mos=4.3,
                quality=_quality(4.3, 4.0, 0.0),
            ),
            cdr(
                "out-1",
                TENANT_A,
                "101",
                "+12125550122",
                start=now - 26 * 3600,
                direction="outbound",
                trunk="carrier",
                mos=3.1,
                quality=_quality(3.1, 35.0, 0.03),
            ),
            cdr(
                "rec-call",
                TENANT_A,
                "100",
                "101",
                start=now - 1200,
                recordings=[{"path": str(wav), "started": now - 1190, "ended": now - 1150}],
            ),
        ]
    )
