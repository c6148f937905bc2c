"""Raw RTP phones for media tests: a UDP socket per peer sending paced G.711 frames, and
the tones and spectra that tell who heard whom (by FFT, never by timing)."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from media import g711
from media.dtmf import COL_FREQS, KEYPAD, ROW_FREQS
from media.endpoint import Endpoint
from media.engine import MediaEngine
from media.sdp import parse_sdp

RATE = 8000
FRAME = 160
HDR = struct.Struct("!BBHII")


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dtmf_tone(key: str, seconds: float) -> npt.NDArray[np.int16]:
    row = next(i for i, r in enumerate(KEYPAD) if key in r)
    col = KEYPAD[row].index(key)
    t = np.arange(round(seconds * RATE)) / RATE
    x = 4000 * np.sin(2 * np.pi * ROW_FREQS[row] * t) + 4000 * np.sin(
        2 * np.pi * COL_FREQS[col] * t
    )
    return x.astype(np.int16)


def dominant(samples: npt.NDArray[np.int16]) -> float:
    """Frequency (Hz) of the strongest FFT bin."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    spectrum[:5] = 0  # ignore DC
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(spectrum.argmax())])


@dataclass
class Peer:
    """A phone: one UDP socket that sends paced RTP and collects what comes back."""

    pts: tuple[int, ...] = (0,)
    telephone_event: int | None = 101
    sock: socket.socket = field(init=False)
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    ts: int = field(default_factory=lambda: random.getrandbits(32))
    received: list[bytes] = field(default_factory=list)
    target: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def sdp(
        self, *, host: str = "127.0.0.1", port: int | None = None, direction: str = "sendrecv"
    ) -> bytes:
        fmts = [str(p) for p in self.pts]
        lines = [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            f"c=IN IP4 {host}",
            "t=0 0",
        ]
        names = {0: "PCMU", 8: "PCMA"}
        attrs = [f"a=rtpmap:{p} {names[p]}/8000" for p in self.pts]
        if self.telephone_event is not None:
            fmts.append(str(self.telephone_event))
            attrs += [
                f"a=rtpmap:{self.telephone_event} telephone-event/8000",
                f"a=fmtp:{self.telephone_event} 0-16",
            ]
        lines.append(f"m=audio {port or self.port} RTP/AVP {' '.join(fmts)}")
        lines += [*attrs, f"a={direction}"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def connect(self, endpoint: Endpoint) -> None:
        """Send to the engine port found in the endpoint's SDP."""
        sdp = parse_sdp(endpoint.local_sdp)
        assert sdp.connection is not None
        self.target = (sdp.connection.address, sdp.media[0].port)

    def send_packet(
        self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None
    ) -> None:
        assert self.target is not None
        header = HDR.pack(
            0x80,
            pt | (0x80 if marker else 0),
            self.seq,
            ts if ts is not None else self.ts,
            self.ssrc,
        )
        self.sock.sendto(header + payload, self.target)
        self.seq = (self.seq + 1) & 0xFFFF

    def send_frame(self, samples: npt.NDArray[np.int16], pt: int | None = None) -> None:
        pt = self.pts[0] if pt is None else pt
        self.send_packet(pt, g711.encode(samples, pt).tobytes())
        self.ts = (self.ts + FRAME) & 0xFFFFFFFF

    def drain(self) -> None:
        for _ in range(10_000):
            try:
                data, _ = self.sock.recvfrom(2048)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.received.append(data)

    def audio(self, pt: int | None = None) -> npt.NDArray[np.int16]:
        """Decoded audio of the packets received (optionally only one payload type)."""
        frames = []
        for data in self.received:
            p = data[1] & 0x7F
            if p in (0, 8) and (pt is None or p == pt):
                frames.append(g711.decode(np.frombuffer(data[12:], np.uint8), p))
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def close(self) -> None:
        self.sock.close()


async def run(
    streams: list[tuple[Peer, npt.NDArray[np.int16] | None]],
    frames: int,
    listeners: tuple[Peer, ...] = (),
    drop: set[int] | None = None,
) -> None:
    """Send ``frames`` 20 ms frames from each peer (paced), then let the engine settle."""
    everyone = {id(p): p for p, _ in streams} | {id(p): p for p in listeners}
    for i in range(frames):
        for peer, audio in streams:
            if audio is None:
                continue
            chunk = audio[(i * FRAME) % len(audio) :][:FRAME]
            if len(chunk) < FRAME:
                chunk = np.resize(audio, FRAME)
            if drop and i in drop:
                peer.seq = (peer.seq + 1) & 0xFFFF  # lost on the way
                peer.ts = (peer.ts + FRAME) & 0xFFFFFFFF
                continue
            peer.send_frame(chunk)
        await asyncio.sleep(0.02)
        for peer in everyone.values():
            peer.drain()
    for _ in range(15):
        await asyncio.sleep(0.02)
        for peer in everyone.values():
            peer.drain()


def new_peer(peers: list[Peer], **kw: object) -> Peer:
    p = Peer(**kw)  # type: ignore[arg-type]
    peers.append(p)
    return p


def leg(engine: MediaEngine, peer: Peer, **kw: object) -> Endpoint:
    ep = engine.allocate(peer.sdp(), **kw)  # type: ignore[arg-type]
    peer.connect(ep)
    return ep


def b_leg(engine: MediaEngine, peer: Peer) -> Endpoint:
    """The engine offers (towards a callee) and the peer answers."""
    ep = engine.allocate(None)
    ep.set_remote(peer.sdp())
    peer.connect(ep)
    return ep
