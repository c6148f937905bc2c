"""The in-process media engine: endpoints, bridges, players, recorders, DTMF, one clock.

Signalling uses :class:`MediaEngine` (allocate, answer/offer/set_remote on the endpoint,
bridge, play, record, stop, release); everything else happens on the 20 ms frame clock:

1. read the sockets (non-blocking, bounded per socket) -- latch the source (symmetric
   RTP), count reception statistics, feed telephone-events to the deduplicator, and either
   relay the packet at once (header rewrite only) or push it into the leg's jitter buffer.
   Every socket is drained on the tick; the sockets whose packets are relayed also every
   ``poll_interval`` (2.5 ms) in between, so a relayed packet is not held for up to a whole
   frame (which would add 20 ms of jitter to streams whose phase sits on a tick boundary),
   while a decoded leg's packets, wanted on the tick, are read there in one batch;
   ``read_on_arrival`` reads each socket as datagrams arrive instead;
2. pop one frame from every decoded leg and decode them all with one numpy gather;
3. per-tick work: in-band DTMF over all detecting legs in one matrix product, the mix of
   every conference room and monitored call in one vectorised pass (:mod:`media.mixer`,
   sessions in :mod:`media.rooms`), recordings, players, hold music, transcoding;
4. encode every generated frame in one numpy gather and send.

A direction a -> b is relayed when both legs use the same codec and nothing needs the
audio (no recording or in-band detection on a, no player on b, neither in a mixing
session); otherwise it is decoded.
The plan is recomputed only when something changes, not per packet.

Over 600 lines because it is the in-process engine's one tick loop and its control
surface (legs, bridging, players, recorders, rooms, monitors) over the same endpoint
table; the per-packet and per-frame work lives in the modules it calls.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import random
import select
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import structlog

from media import g711, ticktrace
from media.clock import ClockStats, FrameClock
from media.control import EngineStats, HoldSource, RecordingHandle
from media.diskwriter import DiskWriter
from media.dtmf import DtmfError, InbandDetector
from media.endpoint import Address, DtmfCallback, Endpoint, EndpointStats, MediaError
from media.jitter import FrameKind
from media.mixer import Mixer, MonitorMode
from media.moh import HoldMusic
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback, Player, load_source
from media.recorder import FLUSH_FRAMES, Recording
from media.rooms import VOICE_HANG_TICKS, MixContext, MixRoom, MixSession, Monitor
from media.rtcp import (
    SDES_CNAME,
    ReceiverReport,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    build_compound,
    parse_rtcp,
    round_trip_time,
)
from media.rtp import StreamRewriter
from media.ticktrace import TickTrace, from_environment
from media.wav import RecordingWriter

__all__ = [
    "EndpointStats",
    "EngineSettings",
    "EngineStats",
    "MediaEngine",
    "MediaError",
    "Recording",
    "bind_rtp_pair",
    "rtp_ports",
]

log = structlog.get_logger(__name__)

FRAME = 160
_HDR = struct.Struct("!BBHII")
_MAX_ROUNDS = 16  # datagrams per socket per drain: bounds the work a flood can cause
_CLOCK_CHECK = 64  # reads between looks at the clock while draining between ticks
_RELATCH_AFTER = 0.5  # seconds of silence from the latched source before another may take over
_RTCP_INTERVAL = 5.0
_SILENCE = {g711.PT_PCMU: b"\xff" * FRAME, g711.PT_PCMA: b"\xd5" * FRAME}
# Voice activity: a frame whose peak-to-peak swing exceeds this (about -35 dBFS) is speech.
_VOICE_SWING = 1200


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Where and how the engine binds; filled by signalling from config."""

    address: str = "127.0.0.1"  # IP the RTP sockets bind to
    advertised_address: str | None = None  # IP put in SDP (NAT/public), default ``address``
    port_min: int = 20000
    port_max: int = 29999
    jitter_depth: int = 2  # frames buffered on decoded legs
    hold_music: str | None = None  # WAV played to the held party; None = silence
    late_after: float = 0.005
    # False (default): every socket is drained on the tick, and those whose packets are
    # relayed every poll_interval seconds in between (one poll() call for all of them), so
    # relayed packets wait at most poll_interval; the loop wakes 400 times a second while
    # anything is relayed, whatever the packet rate;
    # poll_interval 0 drains on the tick only (up to a frame of added jitter).
    # True: each socket is read as datagrams arrive (loop readers): the lowest latency,
    # but one loop wake-up per packet.
    read_on_arrival: bool = False
    poll_interval: float = 0.0025

    def __post_init__(self) -> None:
        if not (1024 <= self.port_min < self.port_max <= 65535):
            raise ValueError(f"bad RTP port range {self.port_min}-{self.port_max}")
        if self.port_max - self.port_min < 1:
            raise ValueError("the RTP port range needs at least one even/odd pair")


def rtp_ports(port_min: int, port_max: int) -> tuple[int, int]:
    """The first RTP port (even; RTCP on the next) of a range and how many pairs it holds."""
    first = port_min + (port_min & 1)
    return first, (port_max - first + 1) // 2


def bind_rtp_pair(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Non-blocking UDP sockets bound to ``port`` (RTP) and ``port + 1`` (RTCP).

    Raises OSError (nothing left open) when either is taken.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    rtp = socket.socket(family, socket.SOCK_DGRAM)
    rtcp = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rtp.bind((address, port))
        rtcp.bind((address, port + 1))
    except OSError:
        rtp.close()
        rtcp.close()
        raise
    rtp.setblocking(False)
    rtcp.setblocking(False)
    return rtp, rtcp


def _payload(data: bytes) -> bytes | None:
    """The payload of an RTP packet (after CSRCs, extension; without padding)."""
    b0 = data[0]
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if offset + 4 > len(data):
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if b0 & 0x20:
        end -= data[-1]
    if offset > end:
        return None
    return data[offset:end]


class MediaEngine:
    """Anchored media for calls, driven by one 20 ms frame clock (see module docstring)."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._advertised = self.settings.advertised_address or self.settings.address
        # tick/poll reading: fd -> (endpoint, socket, is_rtcp) behind one poll object
        # epoll where there is one: its cost follows the ready sockets, not all of them
        self._poll: select.epoll | select.poll
        # the polls between ticks look only at the RTP sockets of legs whose packets are
        # relayed as they come (a decoded leg's frame is wanted on the tick, not before):
        # a worker recording 200 callers then reads their packets in one batch per tick
        # instead of in 8 polls a frame, each a loop wake-up
        self._relay_poll: select.epoll | select.poll
        if hasattr(select, "epoll"):
            self._poll, self._pollin = select.epoll(), select.EPOLLIN
            self._relay_poll = select.epoll()
        else:
            self._poll, self._pollin = select.poll(), select.POLLIN
            self._relay_poll = select.poll()
        self._fds: dict[int, tuple[Endpoint, socket.socket, bool]] = {}
        self._relay_fds: set[int] = set()  # registered with _relay_poll
        self._loop: asyncio.AbstractEventLoop | None = None  # set when readers are added
        self._poller: asyncio.Task[None] | None = None
        self._endpoints: dict[int, Endpoint] = {}
        self._next_id = 1
        span = (self.settings.port_max - self.settings.port_min) // 2
        self._port_cursor = random.randrange(span) if span else 0
        self._clock = FrameClock(self._tick, late_after=self.settings.late_after)
        self._tick_no = 0
        self._dirty = True
        self._decoders: list[Endpoint] = []
        self._decoder_codecs: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        self._generators: list[Endpoint] = []
        self._detectors: list[Endpoint] = []
        self._relayed = 0
        self._recordings: list[Recording] = []
        self._disk = DiskWriter()  # recordings are written on its thread, never on a tick
        self._detector = InbandDetector()
        self._free_slots: list[int] = []
        self._slots = 0
        self._dtmf_pending: set[Endpoint] = set()
        # RTCP report times: a heap of (due, endpoint id), so a tick looks only at the
        # reports due instead of scanning every endpoint (entries of released endpoints, or
        # of ones rescheduled since, are dropped when they surface)
        self._rtcp_due: list[tuple[float, int]] = []
        self._hold_music: npt.NDArray[np.int16] | HoldMusic | None = None
        # mixing: all rooms and monitored calls are sessions of one mixer
        self._mixer = Mixer(FRAME)
        self._announcers: dict[Player, MixRoom] = {}  # room announcements (virtual talkers)
        self._mix_in_slots: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        self._mix_in_rows: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        self._mix_out: list[Endpoint] = []  # members hearing the mix (no player active)
        self._mix_out_slots: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        self._mix_frames = np.zeros((0, FRAME), np.int16)
        self._mix_result = np.zeros((0, FRAME), np.int16)
        self._voice_tick = np.zeros(0, np.int64)  # by mixer slot: last tick with voice
        self._mix_context = MixContext(
            self._mixer,
            self._own,
            self._changed,
            self._voice_active,
            self._forget_voice,
            self._announcers,
        )
        if self.settings.hold_music:
            self._hold_music = load_source(self.settings.hold_music)
        # SOFTSWITCH_TICK_TRACE: what each tick did, to find why one was late (off: None)
        self.trace: TickTrace | None = from_environment()
        self._blocks = 0  # the disk writer's block count at the last traced tick

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the frame clock on the running loop (and the recordings' disk thread: a
        thread started during a burst of calls would hold the loop up until it runs)."""
        self._clock.start()
        self._disk.start()
        if not self.settings.read_on_arrival and self.settings.poll_interval > 0:
            self._poller = asyncio.create_task(self._poll_loop())
        log.info("media_engine_started", address=self.settings.address)

    async def close(self) -> None:
        """Release every endpoint and stop the clock."""
        for ep in list(self._endpoints.values()):
            self.release(ep)
        self._clock.stop()
        await self._disk.drain()  # every stopped recording's WAV is complete
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        for poll in (self._poll, self._relay_poll):
            close = getattr(poll, "close", None)
            if close is not None:
                close()  # the epoll descriptor
        if self.trace is not None:
            log.info("media_tick_trace_written", path=str(self.trace.close()))
            self.trace = None

    async def __aenter__(self) -> MediaEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def next_tick(self) -> float | None:
        """When the frame clock ticks next (``time.monotonic()``); None while stopped."""
        return self._clock.next_tick if self._clock.running else None

    @property
    def clock_stats(self) -> ClockStats:
        """The frame clock's counters."""
        return self._clock.stats

    def stats(self) -> EngineStats:
        """Engine-wide counters."""
        c = self._clock.stats
        return EngineStats(
            len(self._endpoints),
            self._relayed,
            len(self._decoders),
            c.ticks,
            c.late_ticks,
            c.resyncs,
            c.errors,
            c.max_duration * 1000,
            c.busy,
        )

    # ---- endpoints ------------------------------------------------------------------

    def _bind_pair(self, port: int | None = None) -> tuple[socket.socket, socket.socket]:
        """RTP/RTCP sockets on ``port`` exactly, else on the next free pair of the range."""
        s = self.settings
        if port is not None:
            try:
                return bind_rtp_pair(s.address, port)
            except OSError as exc:
                raise MediaError(
                    f"cannot bind RTP/RTCP ports {port}/{port + 1} on {s.address}: {exc.strerror}"
                ) from None
        first, pairs = rtp_ports(s.port_min, s.port_max)
        for _ in range(pairs):
            candidate = first + 2 * (self._port_cursor % pairs)
            self._port_cursor += 1
            try:
                return bind_rtp_pair(s.address, candidate)
            except OSError:
                continue
        raise MediaError(f"no free RTP/RTCP port pair in {s.port_min}-{s.port_max}")

    def allocate(
        self,
        offer_sdp: bytes | str | None = None,
        *,
        direction: str = "sendrecv",
        on_dtmf: DtmfCallback | None = None,
        inband_dtmf: bool | None = None,
        near: NegotiatedLeg | None = None,
        srtp: str = "off",
    ) -> Endpoint:
        """A new endpoint on a free port pair; ``srtp`` is its SRTP policy (off, optional,
        required; see :mod:`media.sdpcrypto`).

        With ``offer_sdp`` the peer's offer is answered at once (``endpoint.local_sdp`` is
        our answer); without, ``endpoint.local_sdp`` is our offer and the peer's answer goes
        to ``endpoint.set_remote``.  ``inband_dtmf`` None detects in-band tones only when
        the peer has no telephone-event.  Raises MediaError when no port is free and
        SdpError/NegotiationError on a bad offer (nothing is left allocated).  ``near`` (the
        call's other leg) is for the worker pool's interface: one engine holds them all.
        """
        if near is not None:
            self._own(near)
        ep = self._new_endpoint(self._bind_pair(), on_dtmf, inband_dtmf)
        try:
            ep.set_srtp_policy(srtp)
            if offer_sdp is None:
                ep.offer(direction=direction)
            else:
                ep.answer(offer_sdp, direction=direction)
        except Exception:
            ep.rtp_socket.close()
            ep.rtcp_socket.close()
            raise
        self._register(ep)
        return ep

    def open_endpoint(
        self,
        port: int,
        *,
        on_dtmf: DtmfCallback | None = None,
        inband_dtmf: bool | None = None,
    ) -> Endpoint:
        """An endpoint on exactly ``port``/``port + 1`` with no SDP yet: whoever negotiated
        for it (a media-worker pool) hands it the stream with ``endpoint.apply_stream``.

        Raises MediaError naming the ports when they cannot be bound.
        """
        return self._register(self._new_endpoint(self._bind_pair(port), on_dtmf, inband_dtmf))

    def _new_endpoint(
        self,
        sockets: tuple[socket.socket, socket.socket],
        on_dtmf: DtmfCallback | None,
        inband_dtmf: bool | None,
    ) -> Endpoint:
        return Endpoint(
            self._changed,
            self._next_id,
            *sockets,
            self.settings.address,
            self._advertised,
            on_dtmf=on_dtmf,
            inband_dtmf=inband_dtmf,
            jitter_depth=self.settings.jitter_depth,
        )

    def _register(self, ep: Endpoint) -> Endpoint:
        self._next_id += 1
        # first report after about a second (RFC 3550 6.2: half the interval, randomised)
        ep.next_rtcp = time.monotonic() + random.uniform(0.5, 1.5)
        heapq.heappush(self._rtcp_due, (ep.next_rtcp, ep.id))
        self._endpoints[ep.id] = ep
        rtp, rtcp = ep.rtp_socket, ep.rtcp_socket
        if self.settings.read_on_arrival:
            loop = self._loop = asyncio.get_running_loop()
            loop.add_reader(rtp.fileno(), self._readable, ep, rtp, False)
            loop.add_reader(rtcp.fileno(), self._readable, ep, rtcp, True)
        else:
            for sock, is_rtcp in ((rtp, False), (rtcp, True)):
                self._fds[sock.fileno()] = (ep, sock, is_rtcp)
                self._poll.register(sock.fileno(), self._pollin)
        self._changed()
        return ep

    def _own(self, ep: NegotiatedLeg) -> Endpoint:
        """The leg as this engine's endpoint; MediaError when it is not one of ours."""
        if not isinstance(ep, Endpoint) or ep.released or self._endpoints.get(ep.id) is not ep:
            raise MediaError(f"endpoint {ep.id} is not allocated on this engine")
        return ep

    def release(self, endpoint: NegotiatedLeg) -> EndpointStats:
        """Close an endpoint (ends its playback and recordings); its final statistics."""
        ep = self._own(endpoint)
        final = ep.stats()
        mix = ep.mix
        if isinstance(mix, MixSession):
            mix._released(ep)
        self.unbridge(ep)
        self._end_player(ep, "released")
        for rec in [r for r in self._recordings if ep is r.caller or ep is r.callee]:
            self.stop_recording(rec)
        if ep.inband_slot is not None:
            self._free_slots.append(ep.inband_slot)
            ep.inband_slot = None
        for sock in (ep.rtp_socket, ep.rtcp_socket):
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            else:
                self._poll.unregister(sock.fileno())
                del self._fds[sock.fileno()]
                if sock.fileno() in self._relay_fds:
                    self._relay_fds.discard(sock.fileno())
                    self._relay_poll.unregister(sock.fileno())
            sock.close()
        ep.released = True
        self._dtmf_pending.discard(ep)
        del self._endpoints[ep.id]
        self._changed()
        return final

    def bridge(self, leg_a: NegotiatedLeg, leg_b: NegotiatedLeg) -> None:
        """Connect two endpoints so each hears the other (replaces earlier bridges)."""
        a = self._own(leg_a)
        b = self._own(leg_b)
        if a is b:
            raise MediaError("cannot bridge an endpoint to itself")
        for ep in (a, b):
            if ep.peer is not None and ep.peer not in (a, b):
                self.unbridge(ep)
        a.peer, b.peer = b, a
        self._changed()

    def unbridge(self, leg: NegotiatedLeg) -> None:
        """Disconnect an endpoint from its peer (no-op if not bridged)."""
        endpoint = self._own(leg)
        peer = endpoint.peer
        endpoint.peer = None
        if peer is not None and peer.peer is endpoint:
            peer.peer = None
        self._changed()

    # ---- mixing sessions ------------------------------------------------------------

    def mix_room(self, near: NegotiatedLeg | None = None) -> MixRoom:
        """A new, empty conference room mixed on this engine's clock (``near``: for the
        worker pool's interface, where the room goes; one engine holds them all)."""
        if near is not None:
            self._own(near)
        return MixRoom(self._mix_context)

    def monitor(
        self,
        caller: NegotiatedLeg,
        agent: NegotiatedLeg,
        supervisor: NegotiatedLeg,
        mode: MonitorMode | str = MonitorMode.LISTEN,
    ) -> Monitor:
        """Let ``supervisor`` monitor the call between ``caller`` and ``agent``: ``listen``
        (heard by none), ``whisper`` (heard by the agent only) or ``barge`` (heard by both).
        Switch with :meth:`Monitor.set_mode`, end with :meth:`Monitor.stop`."""
        return Monitor(
            self._mix_context, self._own(caller), self._own(agent), self._own(supervisor), mode
        )

    def _forget_voice(self, slot: int) -> None:
        voice = self._voice_tick
        if slot < len(voice):
            voice[slot] = -VOICE_HANG_TICKS - 1

    def _voice_active(self, slot: int) -> bool:
        ticks = self._voice_tick
        return slot < len(ticks) and self._tick_no - int(ticks[slot]) <= VOICE_HANG_TICKS

    # ---- players --------------------------------------------------------------------

    def play(
        self,
        endpoint: NegotiatedLeg,
        source: AudioSource | HoldMusic,
        *,
        loop: bool = False,
        barge_in: bool = False,
    ) -> Playback:
        """Play samples (int16 8 kHz), a WAV file or a music-on-hold playlist (from its
        start, endlessly: ``loop`` is implied) to an endpoint; replaces its playback.

        Returns a handle whose :meth:`Playback.wait` gives why it ended.  Raises
        ValueError naming the file when it cannot be played.
        """
        ep = self._own(endpoint)
        samples = None if isinstance(source, HoldMusic) else load_source(source)
        playback = Playback(ep.id, asyncio.get_running_loop().create_future())
        self._end_player(ep, "replaced")
        if isinstance(source, HoldMusic):
            ep.player = source.program(barge_in=barge_in, playback=playback)
        else:
            assert samples is not None
            ep.player = Player(samples, loop=loop, barge_in=barge_in, playback=playback)
        self._changed()
        return playback

    def stop(self, endpoint: NegotiatedLeg) -> None:
        """Stop the playback on an endpoint (no-op if none)."""
        self._end_player(self._own(endpoint), "stopped")

    def _end_player(self, ep: Endpoint, reason: str) -> None:
        if ep.player is not None:
            ep.player.finish(reason)
            ep.player = None
            self._changed()

    @property
    def hold_music(self) -> HoldSource | None:
        """The engine-wide music on hold (None: silence)."""
        return self._hold_music

    def set_hold_music(
        self, source: HoldSource | None, endpoint: NegotiatedLeg | None = None
    ) -> None:
        """What a held party hears from now on: engine-wide, or for one endpoint (the
        tenant's, user's or queue's playlist chosen by signalling).  A file or samples
        loop; a :class:`HoldMusic` playlist plays from its start at every hold, each held
        endpoint with its own position.  None: the engine default for an endpoint,
        silence engine-wide."""
        music = source if source is None or isinstance(source, HoldMusic) else load_source(source)
        own = self._own(endpoint) if endpoint is not None else None
        targets = [own] if own is not None else list(self._endpoints.values())
        if own is None:
            self._hold_music = music
        else:
            own.hold_music = music
        for ep in targets:
            ep.hold_player = None  # restart with the new music at the next tick
        self._changed()

    # ---- recording ------------------------------------------------------------------

    def record(
        self,
        caller_leg: NegotiatedLeg,
        callee_leg: NegotiatedLeg | None,
        path: str | os.PathLike[str],
    ) -> Recording:
        """Record to a 2-channel 8 kHz WAV (caller, callee) until :meth:`stop_recording`."""
        caller = self._own(caller_leg)
        callee = self._own(callee_leg) if callee_leg is not None else None
        try:
            writer = RecordingWriter(path, channels=2)
        except OSError as exc:
            raise MediaError(
                f"{os.fspath(path)}: cannot create recording ({exc.strerror})"
            ) from None
        closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        rec = Recording(
            os.fspath(path),
            caller,
            callee,
            writer,
            self._disk,
            closed,
            phase=len(self._recordings) % FLUSH_FRAMES,
        )
        for ep in (caller, callee):
            if ep is not None:
                ep.recorded += 1
        self._recordings.append(rec)
        self._changed()
        return rec

    def stop_recording(self, handle: RecordingHandle) -> None:
        """Finish a recording (idempotent); ``await handle.wait_closed()`` for the WAV
        to be complete (its last frames are written off the tick, by the disk thread)."""
        if not isinstance(handle, Recording):
            raise MediaError(f"recording {handle.path} was not made by this engine")
        recording = handle
        if not recording.active:
            return
        recording.active = False
        for ep in (recording.caller, recording.callee):
            if ep is not None:
                ep.recorded -= 1
        self._recordings.remove(recording)
        recording.finish()
        self._changed()

    # ---- the tick plan --------------------------------------------------------------

    def _changed(self) -> None:
        self._dirty = True

    def _plan(self) -> None:
        """Decide per leg: relay or decode, who gets generated audio, who is detected."""
        self._dirty = False
        eps = list(self._endpoints.values())
        for ep in eps:
            peer = ep.peer
            held = peer is not None and peer.remote_hold
            music = ep.hold_music if ep.hold_music is not None else self._hold_music
            if held and music is not None:
                if ep.hold_player is None:  # a new hold: the playlist from its start
                    ep.hold_player = (
                        music.program()
                        if isinstance(music, HoldMusic)
                        else Player(music, loop=True)
                    )
            else:
                ep.hold_player = None
        for ep in eps:
            peer = ep.peer
            needs_audio = ep.recorded > 0 or ep.inband
            relay = (
                peer is not None
                and ep.mix is None
                and peer.mix is None
                and not needs_audio
                and ep.receives
                and peer.sends
                and ep.codec_pt == peer.codec_pt
                and peer.player is None
                and peer.hold_player is None
            )
            new_relay = peer if relay else None
            if new_relay is not ep.relay_to and ep.relay_to is not None:
                ep.relay_to.rewriter = None  # the next relay into it starts a fresh mapping
            ep.relay_to = new_relay
            ep.decode = ep.codec_pt is not None and (
                needs_audio
                or ep.mix is not None
                or (
                    peer is not None
                    and not relay
                    and peer.sends
                    and peer.player is None
                    and peer.hold_player is None
                )
            )
            if ep.inband:
                if ep.inband_slot is None:
                    ep.inband_slot = self._free_slots.pop() if self._free_slots else self._slots
                    if ep.inband_slot == self._slots:
                        self._slots += 1
                    self._detector.reset(ep.inband_slot)
            elif ep.inband_slot is not None:
                self._free_slots.append(ep.inband_slot)
                ep.inband_slot = None
        self._decoders = [ep for ep in eps if ep.decode]
        self._decoder_codecs = g711.codec_index(
            np.array([ep.codec_pt for ep in self._decoders], dtype=np.intp)
        )
        for i, ep in enumerate(self._decoders):
            ep.row = i
        for ep in eps:
            if not ep.decode:
                ep.row = -1
                ep.frame_ok = False
        self._generators = [
            ep
            for ep in eps
            if ep.sends
            and (
                ep.player is not None
                or ep.hold_player is not None
                or (
                    ep.mix is None  # a mixed endpoint hears the mix (_mix_out), not its peer
                    and ep.peer is not None
                    and ep.peer.decode
                    and ep.peer.relay_to is not ep
                )
            )
        ]
        self._plan_mix(eps)
        self._detectors = [ep for ep in eps if ep.inband_slot is not None and ep.decode]
        self._relayed = sum(1 for ep in eps if ep.relay_to is not None)
        if not self.settings.read_on_arrival:
            self._plan_polls(eps)

    def _plan_polls(self, eps: list[Endpoint]) -> None:
        """Register with the between-ticks poll the RTP sockets whose packets are relayed as
        they arrive: audio relayed to the peer, or telephone-events it gets relayed."""
        wanted = {
            ep.rtp_socket.fileno()
            for ep in eps
            if ep.relay_to is not None or (ep.peer is not None and ep.peer.event_pt is not None)
        }
        relay_fds = self._relay_fds
        for fd in relay_fds - wanted:
            self._relay_poll.unregister(fd)
        for fd in wanted - relay_fds:
            self._relay_poll.register(fd, self._pollin)
        self._relay_fds = wanted

    def _plan_mix(self, eps: list[Endpoint]) -> None:
        """Index arrays for the mixing step: decoded rows in, mixer slots out."""
        mixer = self._mixer
        members = [ep for ep in self._decoders if ep.mix is not None]
        self._mix_in_slots = np.array([mixer.slot(ep) for ep in members], dtype=np.intp)
        self._mix_in_rows = np.array([ep.row for ep in members], dtype=np.intp)
        # a member with a player (prompt, music on hold) hears the player instead
        self._mix_out = [
            ep
            for ep in eps
            if ep.mix is not None and ep.sends and ep.player is None and ep.hold_player is None
        ]
        self._mix_out_slots = np.array([mixer.slot(ep) for ep in self._mix_out], dtype=np.intp)
        rows = mixer.rows
        if len(self._mix_frames) < rows:
            size = max(rows, 2 * len(self._mix_frames), 16)
            self._mix_frames = np.zeros((size, FRAME), np.int16)
            self._mix_result = np.zeros((size, FRAME), np.int16)
            voice = np.full(size, -VOICE_HANG_TICKS - 1, np.int64)
            voice[: len(self._voice_tick)] = self._voice_tick
            self._voice_tick = voice

    # ---- the tick ---------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        self._tick_no += 1
        trace = self.trace
        if trace is not None:
            trace.begin(now, self._clock.next_tick)
        if self._dirty:  # signalling changed something since the last tick
            self._plan()
        if trace is not None:
            trace.phase(ticktrace.PLAN)
        if not self.settings.read_on_arrival:
            reads = self._drain(now)
            if trace is not None:
                trace.counts[ticktrace.READS] = reads
                trace.phase(ticktrace.DRAIN)
        if self._dirty:  # the packets did (a barge-in digit, a new latch)
            self._plan()
            if trace is not None:
                trace.phase(ticktrace.PLAN)
        if self._decoders or self._generators or self._announcers:
            self._audio(now)
        if self._dtmf_pending:
            self._poll_dtmf(now)
        if trace is not None:
            trace.phase(ticktrace.DTMF)
        due = self._rtcp_due
        if due and due[0][0] <= now:
            self._rtcp(now)
        if trace is not None:
            trace.phase(ticktrace.RTCP)
            self._end_trace(trace)

    def _end_trace(self, trace: TickTrace) -> None:
        counts = trace.counts
        counts[ticktrace.DECODERS] = len(self._decoders)
        counts[ticktrace.GENERATORS] = len(self._generators)
        counts[ticktrace.RECORDINGS] = len(self._recordings)
        counts[ticktrace.BLOCKS] = self._disk.blocks - self._blocks
        self._blocks = self._disk.blocks
        trace.end()

    def _drain(
        self, now: float, until: float = math.inf, poll: select.epoll | select.poll | None = None
    ) -> int:
        """Read what every socket has queued: rounds of one datagram per ready socket,
        asking the poll object again after each round, until nothing is ready. A socket
        that had one datagram costs one read, where reading each to EAGAIN would cost a
        second, failing read (and an exception) per socket.

        Between ticks the drain stops at ``until``, just after the next tick's time: a
        burst (a peer, or the network, catching up after a stall) is then read partly by
        the tick and the polls after it, instead of holding the tick up until all of it was
        relayed. ``poll``: the poll object to ask (default: every socket's).
        """
        if self._dirty:
            self._plan()
        fds = self._fds
        if poll is None:
            poll = self._poll
        reads = 0
        for _ in range(_MAX_ROUNDS):
            ready = poll.poll(0)
            if not ready:
                return reads
            for fd, _ in ready:
                entry = fds.get(fd)
                if entry is not None:
                    self._read(entry[0], entry[1], entry[2], now)
                reads += 1
                if reads % _CLOCK_CHECK == 0 and time.monotonic() >= until:
                    return reads
        return reads

    async def _poll_loop(self) -> None:
        interval = self.settings.poll_interval
        while True:
            if self._relay_fds:
                await asyncio.sleep(interval)
            else:  # nothing relayed: look again just after the next tick (it may plan some)
                await asyncio.sleep(max(interval, self._clock.next_tick - time.monotonic()))
            try:
                # up to half the lateness allowed past the tick's time: the poll never
                # makes a tick late by itself, nor leaves the tick a whole burst to read
                started = time.monotonic()
                reads = self._drain_relayed(
                    started, self._clock.next_tick + self.settings.late_after / 2
                )
                trace = self.trace
                if trace is not None:
                    trace.polls += 1
                    trace.poll_reads += reads
                    trace.poll_seconds += time.monotonic() - started
            except Exception:
                log.exception("media_poll_failed")

    def _drain_relayed(self, now: float, until: float) -> int:
        """The drain between ticks: only the sockets whose packets are relayed at once."""
        if self._dirty:
            self._plan()  # which sockets those are
        return self._drain(now, until, self._relay_poll) if self._relay_fds else 0

    def _readable(self, ep: Endpoint, sock: socket.socket, is_rtcp: bool) -> None:
        if self._dirty:
            self._plan()  # route by the current plan, not the one before the last change
        # one datagram per wake-up: the reader fires again while more are queued, and the
        # common case (one packet per 20 ms) then costs no EAGAIN exception
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            return  # nothing after all, or an ICMP error from an earlier send
        try:
            if is_rtcp:
                self._on_rtcp(ep, data, addr, time.monotonic())
            else:
                self._on_rtp(ep, data, addr, time.monotonic())
        except Exception:
            # never let one bad datagram take the reader (and the leg) down
            log.exception("media_read_failed", endpoint=ep.id)

    def _read(self, ep: Endpoint, sock: socket.socket, is_rtcp: bool, now: float) -> None:
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            return  # nothing after all, or an ICMP error from an earlier send
        if is_rtcp:
            self._on_rtcp(ep, data, addr, now)
        else:
            self._on_rtp(ep, data, addr, now)

    def _on_rtp(self, ep: Endpoint, data: bytes, addr: Address, now: float) -> None:
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or ep.codec_pt is None:
            ep.invalid += 1
            return
        _, b1, seq, ts, ssrc = _HDR.unpack_from(data)
        pt = b1 & 0x7F
        if 72 <= pt <= 76:
            self._on_rtcp(ep, data, addr, now)  # RTCP multiplexed on the RTP port
            return
        srtp = ep.srtp
        if srtp is not None:
            clear = srtp.unprotect(data)
            if clear is None:
                ep.invalid += 1  # forged, replayed or plain: never latched nor relayed
                return
            data = clear
        if pt != ep.codec_pt and pt != ep.event_pt:
            ep.invalid += 1  # comfort noise or a codec we negotiated away
            return
        addr = (addr[0], addr[1])  # IPv6 addresses come with flow info and scope
        if addr != ep.latched:
            if ep.latched is not None and now - ep.last_rx < _RELATCH_AFTER:
                ep.invalid += 1  # a second source while the latched one is alive
                return
            ep.latched = addr
            ep.relatches += 1
            if ep.rtcp_remote is None or ep.rtcp_remote[0] != addr[0]:
                ep.rtcp_remote = (addr[0], addr[1] + 1)
        ep.last_rx = now
        ep.receiver(ssrc).on_packet(seq, ts, now)
        ep.octets_received += len(data)
        if pt == ep.event_pt:
            payload = _payload(data)
            if payload is None:
                ep.invalid += 1
                return
            try:
                digits = ep.dedup.feed(ts, payload, now)
            except DtmfError:
                ep.invalid += 1
                return
            self._dtmf_pending.add(ep)
            for digit in digits:
                ep.deliver(digit)
            peer = ep.peer
            if peer is not None and peer.event_pt is not None and peer.sends:
                self._relay(peer, data, peer.event_pt, ssrc, seq, ts, bool(b1 & 0x80), now)
            return
        target = ep.relay_to
        if target is not None:
            self._relay(target, data, pt, ssrc, seq, ts, bool(b1 & 0x80), now)
        elif ep.decode:
            payload = _payload(data)
            if payload is None:
                ep.invalid += 1
                return
            ep.jitter.push(seq, payload)

    def _relay(
        self,
        dst: Endpoint,
        data: bytes,
        pt: int,
        ssrc: int,
        seq: int,
        ts: int,
        marker: bool,
        now: float,
    ) -> None:
        dest = dst.destination
        if dest is None:
            return
        rw = dst.rewriter
        first = rw is None
        if rw is None:
            # continue the leg's outbound stream where the previous feeder left it
            step = max(FRAME, round((now - dst.out_time) * 8000)) if dst.out_time else FRAME
            rw = dst.rewriter = StreamRewriter(
                ssrc=dst.out_ssrc,
                first_sequence=(dst.out_seq + 1) & 0xFFFF,
                first_timestamp=(dst.out_ts + step) & 0xFFFFFFFF,
            )
        out = rw.advance(ssrc, seq, ts, now)
        if out is None:
            return
        out_seq, out_ts, discontinuity = out
        b1 = pt | (0x80 if marker or discontinuity or first else 0)
        # the whole header in one pack: cheaper than a bytearray patched with pack_into
        packet = _HDR.pack(data[0], b1, out_seq, out_ts, rw.ssrc) + data[12:]
        if (out_seq - dst.out_seq) & 0xFFFF < 0x8000:
            dst.out_seq, dst.out_ts, dst.out_time = out_seq, out_ts, now
        self._send(dst, packet, dest, len(data) - 12)

    def _send(self, ep: Endpoint, packet: bytes, dest: Address, payload_len: int) -> None:
        srtp = ep.srtp
        if srtp is not None:
            packet = srtp.protect(packet)
        try:
            ep.rtp_socket.sendto(packet, dest)
        except OSError:
            ep.tx_errors += 1
            return
        ep.tx.on_sent(payload_len)

    def _audio(self, now: float) -> None:
        decoders = self._decoders
        pcm: npt.NDArray[np.int16] | None = None
        if decoders:
            payloads: list[bytes] = []
            for ep in decoders:
                frame = ep.jitter.pop()
                payload = frame.payload
                silence = _SILENCE[ep.codec_pt or 0]
                ep.frame_ok = payload is not None or frame.kind is FrameKind.SILENCE
                if payload is None:
                    payload = silence
                elif len(payload) != FRAME:
                    payload = (payload + silence)[:FRAME]  # other ptimes: fit one frame
                payloads.append(payload)
            codes = np.frombuffer(b"".join(payloads), np.uint8).reshape(len(decoders), FRAME)
            pcm = g711.decode_mixed(codes, self._decoder_codecs)
            if self._detectors:
                self._detect(pcm)
        trace = self.trace
        if trace is not None:
            trace.phase(ticktrace.DECODE)
        mixed = self._mix(pcm) if self._mix_out or self._announcers else None
        out_eps: list[Endpoint] = []
        out_rows: list[npt.NDArray[np.int16]] = []
        for ep in self._generators:
            player = ep.player or ep.hold_player
            if player is not None:
                frame_pcm = player.next_frame()
                if frame_pcm is None:
                    self._end_player(ep, "finished")
                    continue
            else:
                peer = ep.peer
                if peer is None or peer.row < 0 or not peer.frame_ok or pcm is None:
                    continue
                frame_pcm = pcm[peer.row]
            out_eps.append(ep)
            out_rows.append(frame_pcm)
        # one matrix of everything to send: generated rows, then the mix rows in one gather
        n_gen, n_mix = len(out_eps), len(self._mix_out)
        out = np.empty((n_gen + n_mix, FRAME), np.int16)
        if out_rows:
            out[:n_gen] = out_rows
        if n_mix and mixed is not None:
            np.take(mixed, self._mix_out_slots, axis=0, out=out[n_gen:])
            out_eps += self._mix_out
        else:
            out = out[:n_gen]
        if trace is not None:
            trace.phase(ticktrace.PLAYERS)
        if self._recordings:
            silence_pcm = np.zeros(FRAME, np.int16)
            heard = dict(zip(out_eps, out, strict=True))
            for rec in self._recordings:
                left = self._row(rec.caller, pcm, silence_pcm)
                if rec.callee is not None:
                    right = self._row(rec.callee, pcm, silence_pcm)
                else:
                    right = np.array(heard.get(rec.caller, silence_pcm))  # what it hears
                rec.append(left, right)
        if trace is not None:
            trace.phase(ticktrace.RECORD)
        if not out_eps:
            return
        codecs = g711.codec_index(np.array([ep.codec_pt for ep in out_eps], dtype=np.intp))
        encoded = g711.encode_mixed(out, codecs).tobytes()
        tick = self._tick_no
        for i, ep in enumerate(out_eps):
            dest = ep.destination
            if dest is None:
                continue
            if ep.generated_tick == tick - 1:
                step, marker = FRAME, 0
            else:
                gap = round((now - ep.out_time) * 8000) if ep.out_time else FRAME
                step, marker = max(FRAME, gap), 0x80
            ep.generated_tick = tick
            ep.out_seq = (ep.out_seq + 1) & 0xFFFF
            ep.out_ts = (ep.out_ts + step) & 0xFFFFFFFF
            ep.out_time = now
            header = _HDR.pack(
                0x80, marker | (ep.codec_pt or 0), ep.out_seq, ep.out_ts, ep.out_ssrc
            )
            self._send(ep, header + encoded[i * FRAME : (i + 1) * FRAME], dest, FRAME)
        if trace is not None:
            trace.phase(ticktrace.SEND)

    def _mix(self, pcm: npt.NDArray[np.int16] | None) -> npt.NDArray[np.int16]:
        """Every mixing session in one pass: decoded voices and room announcements in by
        mixer slot, what each slot hears out; notes voice activity per slot."""
        rows = self._mixer.rows
        frames = self._mix_frames[:rows]
        frames.fill(0)
        if pcm is not None and len(self._mix_in_slots):
            # rows without a frame this tick decode the codec's silence: no mask needed
            frames[self._mix_in_slots] = pcm[self._mix_in_rows]
            swing = frames.max(axis=1).astype(np.int32) - frames.min(axis=1)
            self._voice_tick[:rows][swing > _VOICE_SWING] = self._tick_no
        for player, room in list(self._announcers.items()):
            frame = player.next_frame()
            if frame is None:
                room._end_announcement(player, "finished")
            else:
                frames[self._mixer.slot(player)] = frame
        return self._mixer.mix(frames, out=self._mix_result[:rows])

    @staticmethod
    def _row(
        ep: Endpoint, pcm: npt.NDArray[np.int16] | None, silence: npt.NDArray[np.int16]
    ) -> npt.NDArray[np.int16]:
        if pcm is None or ep.row < 0 or not ep.frame_ok:
            return silence
        return pcm[ep.row].copy()

    def _detect(self, pcm: npt.NDArray[np.int16]) -> None:
        matrix = np.zeros((self._slots, FRAME), np.int16)
        for ep in self._detectors:
            assert ep.inband_slot is not None
            if ep.frame_ok:
                matrix[ep.inband_slot] = pcm[ep.row]
        by_slot = {ep.inband_slot: ep for ep in self._detectors}
        for slot, digit in self._detector.process(matrix):
            target = by_slot.get(slot)
            if target is not None:
                target.deliver(digit)

    def _poll_dtmf(self, now: float) -> None:
        for ep in list(self._dtmf_pending):
            for digit in ep.dedup.poll(now):
                ep.deliver(digit)
            if ep.dedup.get_timer() is None:
                self._dtmf_pending.discard(ep)

    # ---- RTCP -----------------------------------------------------------------------

    def _on_rtcp(self, ep: Endpoint, data: bytes, addr: Address, now: float) -> None:
        srtp = ep.srtp
        if srtp is not None:
            clear = srtp.unprotect_rtcp(data)
            if clear is None:
                ep.invalid += 1
                return
            data = clear
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            ep.invalid += 1
            return
        if ep.latched is not None and addr[0] != ep.latched[0]:
            ep.invalid += 1  # reports from a stranger would poison RTT and loss figures
            return
        ep.rtcp_remote = (addr[0], addr[1])
        unix = time.time()
        for p in packets:
            if isinstance(p, SenderReport) and ep.rx is not None and p.ssrc == ep.rx.ssrc:
                ep.rx.on_sender_report(p, now)
            if isinstance(p, SenderReport | ReceiverReport):
                for block in p.reports:
                    if block.ssrc == ep.out_ssrc:
                        rtt = round_trip_time(block, unix)
                        if rtt is not None:
                            ep.rtt = rtt

    def _rtcp(self, now: float) -> None:
        # the report times are randomised, so they stay spread over the ticks instead of
        # bunching hundreds of reports into one
        unix = time.time()
        due = self._rtcp_due
        endpoints = self._endpoints
        while due and due[0][0] <= now:
            at, ep_id = heapq.heappop(due)
            ep = endpoints.get(ep_id)
            if ep is None or ep.next_rtcp != at:
                continue  # released, or rescheduled since
            if ep.stream is None:
                # nothing to report on yet: look again in a second
                ep.next_rtcp = now + 1.0
                heapq.heappush(due, (ep.next_rtcp, ep_id))
                continue
            # randomised interval (RFC 3550 6.3.1) keeps reports of many legs apart
            ep.next_rtcp = now + _RTCP_INTERVAL * random.uniform(0.5, 1.5)
            heapq.heappush(due, (ep.next_rtcp, ep_id))
            dest = ep.rtcp_remote or (
                (ep.sdp_remote[0], ep.sdp_remote[1] + 1) if ep.sdp_remote else None
            )
            if dest is None:
                continue
            blocks = (ep.rx.report_block(now),) if ep.rx is not None and ep.rx.received else ()
            first: RtcpPacket
            if ep.tx.packet_count:
                elapsed = round((now - ep.out_time) * 8000) if ep.out_time else 0
                first = ep.tx.sender_report(unix, ep.out_ts + elapsed, blocks)
            else:
                first = ReceiverReport(ep.out_ssrc, blocks)
            sdes = SourceDescription(
                ((ep.out_ssrc, ((SDES_CNAME, f"ms{ep.id}@{ep.advertised}"),)),)
            )
            report = build_compound([first, sdes])
            srtp = ep.srtp
            if srtp is not None:
                report = srtp.protect_rtcp(report)
            try:
                ep.rtcp_socket.sendto(report, dest)
            except OSError:
                ep.tx_errors += 1
