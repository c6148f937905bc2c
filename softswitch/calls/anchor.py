"""Anchored media: every leg of a call gets an endpoint on the media engine.

With ``[media] anchor = "always"`` each party talks RTP to the switch, never to the other
party: the caller's offer is answered by the caller's endpoint, every branch gets our own
offer, and the winner's endpoint is bridged to the caller's. What that buys:

- phones behind NAT get audio (the engine latches onto where packets come from);
- a re-INVITE or UPDATE is answered by the switch itself, so putting the other party on
  hold plays it music instead of silence and needs no second offer/answer on the far leg;
- DTMF reaches the call: ``*98`` starts and ``*99`` stops a two-channel recording;
- each side's jitter, loss and MOS end up in the CDR.

This module owns the SDP of anchored legs; ``softswitch.calls.media.leg_sdp`` keeps doing
it for calls that pass SDP through.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from config.media import MediaSettings
from config.models import Tenant, hold_music_for
from config.moh import MusicOnHold
from config.security_media import SrtpPolicy
from media.control import MediaControl
from media.dtmf import Digit
from media.endpoint import MediaError
from media.engine import EndpointStats, EngineSettings
from media.moh import HoldMusic, load_hold_music
from media.negotiation import NegotiatedLeg
from media.sdp import NegotiationError, SdpError
from softswitch.calls.mediastate import CallMedia

if TYPE_CHECKING:
    from softswitch.calls.call import Call, Leg

__all__ = ["CallMedia", "MediaAnchor", "MediaRefused", "engine_settings", "worst_mos"]

log = structlog.get_logger(__name__)

#: Seconds between the keys of one feature code (``*`` ``9`` ``8``).
FEATURE_CODE_GAP = 3.0
START_RECORDING = "*98"
STOP_RECORDING = "*99"
_PREFIXES = frozenset(
    code[:i] for code in (START_RECORDING, STOP_RECORDING) for i in range(1, len(code) + 1)
)


def engine_settings(settings: MediaSettings, public_host: str | None) -> EngineSettings:
    """The engine's settings from ``[media]``: the address put in SDP is the configured
    one, else the bind address, else (bound to every interface) the SIP public host when it
    is an IP, else the address the kernel would use to reach the outside world."""
    advertised = settings.advertised_address
    if advertised is None and settings.address not in ("0.0.0.0", "::"):
        advertised = settings.address
    if advertised is None and public_host:
        with contextlib.suppress(ValueError):
            advertised = str(ipaddress.ip_address(public_host.strip("[]")))
    if advertised is None:
        advertised = _primary_address()
    return EngineSettings(
        address=settings.address,
        advertised_address=advertised,
        port_min=settings.port_min,
        port_max=settings.port_max,
        hold_music=str(settings.hold_music) if settings.hold_music else None,
    )


def _primary_address() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent, a route is chosen
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class MediaRefused(Exception):
    """An offer the switch cannot anchor: ``status`` is the SIP answer (400/488/503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def _refusal(error: Exception) -> MediaRefused:
    if isinstance(error, NegotiationError):
        return MediaRefused(488, "Not Acceptable Here")
    if isinstance(error, SdpError):
        return MediaRefused(400, "Bad SDP")
    return MediaRefused(503, "No Media Ports")


class MediaAnchor:
    """Anchors calls in one media engine (see the module docstring)."""

    def __init__(self, engine: MediaControl, settings: MediaSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.recordings_dir = settings.recordings_dir
        self._playlists: dict[MusicOnHold, HoldMusic] = {}

    def load_playlists(self, tenants: list[Tenant]) -> None:
        """Decode every configured music-on-hold playlist once (blocking: run it in a
        thread at start-up) so that putting a call on hold never reads files on the loop
        (media workers are sent the file names and load each playlist once themselves)."""
        for tenant in tenants:
            for playlist in (tenant.moh, *(user.moh for user in tenant.users)):
                if playlist is not None and playlist not in self._playlists:
                    self._playlists[playlist] = load_hold_music(playlist)

    def set_hold_music(self, tenant: Tenant | None, held: Leg, holder: str) -> None:
        """What ``held`` hears when the party ``holder`` (an extension, or '' for an
        outside party) puts it on hold: the holder's playlist, else the tenant's, else
        ``[media] hold_music``."""
        ep = held.media
        if tenant is None or ep is None or ep.released:
            return
        playlist = hold_music_for(tenant, tenant.user_by_extension(holder) if holder else None)
        self.engine.set_hold_music(self._playlists.get(playlist) if playlist else None, ep)

    # ---------------------------------------------------------------- endpoints per leg
    def answer_caller_offer(self, leg: Leg, offer: bytes, srtp: SrtpPolicy = "optional") -> None:
        """The caller's endpoint, answering its INVITE's offer (or offering, for an
        INVITE without SDP: the offer goes in our 2xx, the answer comes in the ACK).

        Under the leg's ``srtp`` policy (``config.security_media``): SRTP is answered when
        the caller offers SDES keys (RTP/SAVP, or best-effort a=crypto over RTP/AVP),
        plain RTP otherwise; ``required`` refuses a plain offer with 488, ``off`` an
        RTP/SAVP one. Each leg keys its own SRTP, so a phone gets SRTP while the other leg
        (a carrier) stays RTP."""
        try:
            ep = self.engine.allocate(offer or None, inband_dtmf=self._inband(), srtp=srtp)
        except (MediaError, NegotiationError, SdpError) as error:
            raise _refusal(error) from None
        self.attach(leg, ep)

    def offer_to_branch(
        self, caller: Leg, srtp: SrtpPolicy = "optional"
    ) -> tuple[NegotiatedLeg, bytes]:
        """A new endpoint for an outbound leg and our offer to it: the caller's codec first,
        so that the bridge can relay without transcoding when the callee agrees; keys under
        the leg's ``srtp`` policy (RTP/SAVP only when required, none when off)."""
        codecs = ("PCMU", "PCMA")
        caller_ep = caller.media
        if (
            caller_ep is not None
            and caller_ep.stream is not None
            and caller_ep.stream.codec is not None
            and caller_ep.stream.codec.name == "PCMA"
        ):
            codecs = ("PCMA", "PCMU")
        try:
            # on the caller's worker when media runs in worker processes: bridgeable
            ep = self.engine.allocate(inband_dtmf=self._inband(), near=caller_ep, srtp=srtp)
            return ep, ep.offer(codecs=codecs)
        except MediaError as error:
            raise _refusal(error) from None

    def attach(self, leg: Leg, ep: NegotiatedLeg) -> None:
        """``ep`` is ``leg``'s endpoint; its key presses go to the call."""
        leg.media = ep
        ep.on_dtmf = lambda _ep, digit: self.digit(leg, digit)

    def local_media(self, leg: Leg) -> tuple[MediaControl, NegotiatedLeg] | None:
        """The media control interface and the leg's endpoint, which applications drive
        (None when the leg has no live endpoint)."""
        ep = leg.media
        if ep is not None and not ep.released:
            return self.engine, ep
        return None

    def _inband(self) -> bool | None:
        return {"auto": None, "always": True, "never": False}[self.settings.inband_dtmf]

    def remote_answer(self, leg: Leg, sdp: bytes) -> bool:
        """Apply an outbound leg's answer (in a 18x or the 2xx); False when the leg has no
        usable stream (no SDP ever, or an answer that does not fit our offer)."""
        ep = leg.media
        if ep is None or not sdp or ep.released:
            return ep is not None and not ep.released and ep.stream is not None
        try:
            ep.set_remote(sdp)
        except MediaError:
            pass  # no offer pending: the 2xx repeats the answer a 18x already gave
        except (NegotiationError, SdpError) as error:
            log.info("answer_refused", call=leg.call.id, error=str(error))
            return False
        return ep.stream is not None

    def bridge(self, a: Leg, b: Leg) -> None:
        if (
            a.media is not None
            and b.media is not None
            and not a.media.released
            and not b.media.released
        ):
            self.engine.bridge(a.media, b.media)

    def reoffer(self, leg: Leg, offer: bytes) -> bytes:
        """Answer an in-dialog offer (re-INVITE/UPDATE) ourselves; without SDP, make one."""
        ep = leg.media
        if ep is None or ep.released:
            raise MediaRefused(488, "Not Acceptable Here")
        try:
            return ep.answer(offer) if offer else ep.offer()
        except (MediaError, NegotiationError, SdpError) as error:
            raise _refusal(error) from None

    def ack_answer(self, leg: Leg, sdp: bytes) -> None:
        """The answer an ACK carries to the offer we put in a 2xx."""
        ep = leg.media
        if ep is None or ep.released or not sdp:
            return
        try:
            ep.set_remote(sdp)
        except (MediaError, NegotiationError, SdpError) as error:
            log.info("ack_answer_ignored", call=leg.call.id, error=str(error))

    def release(self, leg: Leg) -> EndpointStats | None:
        ep = leg.media
        if ep is None or ep.released:
            return None
        return self.engine.release(ep)

    # ---------------------------------------------------------------- the call as a whole
    def call_answered(self, call: Call, record: bool) -> None:
        """The winner is bridged: release the other branches, start configured recording."""
        for leg in call.outbound:
            if leg is not call.winner:
                self.release(leg)
        if record:
            self.start_recording(call, reason="configured")

    def call_ended(self, call: Call) -> None:
        """Stop recording and release every endpoint; the figures go to the CDR."""
        media = call.media
        if media is None:
            return
        self.stop_recording(call)
        sides = {"caller": call.inbound, "callee": call.winner}
        for side, leg in sides.items():
            if leg is None or leg.call is not call:
                continue
            stats = self.release(leg)
            if stats is not None and (stats.packets_received or stats.packets_sent):
                media.quality[side] = _figures(stats)
        for leg in call.outbound:
            if leg.call is call:  # a transferred leg lives on in another call
                self.release(leg)

    # ---------------------------------------------------------------- recording
    def start_recording(self, call: Call, *, reason: str) -> None:
        media = call.media
        caller, callee = call.inbound, call.winner
        if (
            media is None
            or media.recording is not None
            or callee is None
            or caller.media is None
            or callee.media is None
        ):
            return
        started = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
        name = f"{stamp}-{call.id}-{len(media.recordings) + 1}.wav"
        path = Path(self.recordings_dir) / call.tenant / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            media.recording = self.engine.record(caller.media, callee.media, path)
        except (OSError, MediaError) as error:
            log.warning("recording_not_started", call=call.id, error=str(error))
            return
        media.recording_started = started
        log.info("recording_started", call=call.id, path=str(path), reason=reason)

    def stop_recording(self, call: Call) -> None:
        media = call.media
        if media is None or media.recording is None:
            return
        recording, media.recording = media.recording, None
        self.engine.stop_recording(recording)
        ended = time.time()
        media.recordings.append(
            {
                "path": recording.path,
                "started": round(media.recording_started, 3),
                "ended": round(ended, 3),
                "channels": ["caller", "callee"],
            }
        )
        log.info(
            "recording_stopped",
            call=call.id,
            path=recording.path,
            seconds=round(ended - media.recording_started, 1),
        )

    # ---------------------------------------------------------------- DTMF
    def digit(self, leg: Leg, digit: Digit) -> None:
        """A key pressed on ``leg`` (RFC 4733, in-band or SIP INFO): logged, and fed to
        the feature codes."""
        call = leg.call
        media = call.media
        log.info(
            "dtmf",
            call=call.id,
            leg="caller" if leg.inbound else "callee",
            digit=digit.digit,
            source=digit.source,
            duration_ms=digit.duration_ms,
        )
        if media is None or not self.settings.feature_codes:
            return
        now = time.monotonic()
        keys = media.keys if now - media.key_at <= FEATURE_CODE_GAP else ""
        keys = digit.digit if digit.digit == "*" else keys + digit.digit
        media.key_at = now
        media.keys = keys if keys in _PREFIXES else ""
        if keys == START_RECORDING:
            media.keys = ""
            self.start_recording(call, reason=START_RECORDING)
        elif keys == STOP_RECORDING:
            media.keys = ""
            self.stop_recording(call)


def _figures(stats: EndpointStats) -> dict[str, Any]:
    return {
        "codec": stats.codec,
        "packets_received": stats.packets_received,
        "packets_sent": stats.packets_sent,
        "packets_lost": stats.packets_lost,
        "loss": round(stats.loss_ratio, 4),
        "jitter_ms": round(stats.jitter_ms, 2),
        "rtt_ms": None if stats.rtt_ms is None else round(stats.rtt_ms, 2),
        "mos": stats.mos,
        "remote": None if stats.remote is None else f"{stats.remote[0]}:{stats.remote[1]}",
    }


def worst_mos(quality: dict[str, Any]) -> float | None:
    """The CDR's headline MOS: the worse side's."""
    scores = [side["mos"] for side in quality.values() if side.get("mos") is not None]
    return min(scores) if scores else None
