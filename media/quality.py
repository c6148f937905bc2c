"""Call quality: the ITU-T G.107 E-model reduced to what a media engine measures.

``r_factor`` computes R = Ro - Is - Id - Ie,eff + A with the full G.107 formulas for the
basic signal-to-noise ratio, simultaneous impairments and delay impairments (all terminal
parameters at their G.107 default values unless given), and the equipment impairment of
G.711 under random packet loss (Ie = 0, Bpl from ITU-T G.113 Appendix I).  Network jitter
is folded into the one-way delay the usual way (delay + 2 * jitter + 10 ms codec/packet
overhead), because a jitter buffer turns jitter into delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BPL_G711_PLC = 25.1  # G.113 App. I: G.711 with packet loss concealment
BPL_G711_NO_PLC = 4.3  # G.113 App. I: G.711 without concealment


@dataclass(frozen=True, slots=True)
class TerminalParams:
    """G.107 (06/2015) Table 1 default values."""

    slr: float = 8.0  # send loudness rating, dB
    rlr: float = 2.0  # receive loudness rating, dB
    stmr: float = 15.0  # sidetone masking rating, dB
    ds: float = 3.0  # D-value of telephone, send side
    dr: float = 3.0  # D-value of telephone, receive side
    telr: float = 65.0  # talker echo loudness rating, dB
    wepl: float = 110.0  # weighted echo path loss, dB
    qdu: float = 1.0  # number of quantisation distortion units
    nc: float = -70.0  # circuit noise, dBm0p
    nfor: float = -64.0  # noise floor at the receive side, dBmp
    ps: float = 35.0  # room noise at the send side, dB(A)
    pr: float = 35.0  # room noise at the receive side, dB(A)
    advantage: float = 0.0  # A, expectation factor


DEFAULT_TERMINAL = TerminalParams()


def _log10(x: float) -> float:
    return math.log10(x)


def _basic(p: TerminalParams) -> tuple[float, float]:
    """(Ro, No): basic signal-to-noise ratio and total noise (G.107 7.2)."""
    olr = p.slr + p.rlr
    nfo = p.nfor + p.rlr
    lstr = p.stmr + p.dr
    pre = p.pr + 10 * _log10(1 + 10 ** ((10 - lstr) / 10))
    nor = p.rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nos = p.ps - p.slr - p.ds - 100 + 0.004 * (p.ps - olr - p.ds - 14) ** 2
    no = 10 * _log10(10 ** (p.nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    return 15 - 1.5 * (p.slr + no), no


def _sidetone(p: TerminalParams, t: float) -> float:
    """Ist, the sidetone impairment (G.107 7.3)."""
    stmro = -10 * _log10(10 ** (-p.stmr / 10) + math.exp(-t / 4) * 10 ** (-p.telr / 10))
    return (
        12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )


def _simultaneous(p: TerminalParams, ro: float, no: float, t: float) -> float:
    """Is = Iolr + Ist + Iq (G.107 7.3)."""
    olr = p.slr + p.rlr
    xolr = olr + 0.2 * (64 + no - p.rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    ist = _sidetone(p, t)
    q = 37 - 15 * _log10(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * _log10(1 + 10**y + 10**z)
    return iolr + ist + iq


def _delay(p: TerminalParams, ro: float, no: float, t: float, ta: float, tr: float) -> float:
    """Id = Idte + Idle + Idd (G.107 7.4); delays in ms."""
    terv = p.telr - 40 * _log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
    if p.stmr < 9:
        terv += _sidetone(p, t) / 2  # G.107: TERVs when the sidetone is weak
    roe = -1.5 * (no - p.rlr)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    if p.stmr > 20:
        idte = math.sqrt(idte**2 + _sidetone(p, t) ** 2)  # G.107: Idtes
    rle = 10.5 * (p.wepl + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    idd = 0.0
    if ta > 100:
        x = _log10(ta / 100) / _log10(2)
        idd = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def effective_ie(
    loss_ratio: float, bpl: float = BPL_G711_PLC, burst_ratio: float = 1.0, ie: float = 0.0
) -> float:
    """Ie,eff (G.107 7.5) for a packet-loss ratio 0..1 (random loss when burst_ratio = 1)."""
    ppl = 100.0 * min(max(loss_ratio, 0.0), 1.0)
    return ie + (95 - ie) * ppl / (ppl / burst_ratio + bpl)


def effective_delay_ms(one_way_delay_ms: float, jitter_ms: float) -> float:
    """One-way delay as the listener experiences it once a jitter buffer absorbed jitter."""
    return max(0.0, one_way_delay_ms) + 2.0 * max(0.0, jitter_ms) + 10.0


def r_factor(
    one_way_delay_ms: float = 0.0,
    loss_ratio: float = 0.0,
    jitter_ms: float = 0.0,
    *,
    bpl: float = BPL_G711_PLC,
    burst_ratio: float = 1.0,
    terminal: TerminalParams = DEFAULT_TERMINAL,
    fold_jitter: bool = True,
) -> float:
    """Transmission rating R (0..~93.2) of a G.711 call.

    Delays in ms; with ``fold_jitter`` the mouth-to-ear delay Ta is
    :func:`effective_delay_ms`, else ``one_way_delay_ms`` itself.  The echo path delays
    follow G.107's usual assumption for a four-wire VoIP path: T = Ta, Tr = 2 Ta.
    """
    if any(math.isnan(v) for v in (one_way_delay_ms, loss_ratio, jitter_ms)):
        raise ValueError("E-model inputs must be numbers")
    ta = (
        effective_delay_ms(one_way_delay_ms, jitter_ms)
        if fold_jitter
        else max(0.0, one_way_delay_ms)
    )
    ro, no = _basic(terminal)
    is_ = _simultaneous(terminal, ro, no, ta)
    id_ = _delay(terminal, ro, no, ta, ta, 2 * ta)
    return ro - is_ - id_ - effective_ie(loss_ratio, bpl, burst_ratio) + terminal.advantage


def mos_from_r(r: float) -> float:
    """Estimated MOS-CQE from R (G.107 Annex B)."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def mos(
    one_way_delay_ms: float = 0.0,
    loss_ratio: float = 0.0,
    jitter_ms: float = 0.0,
    *,
    bpl: float = BPL_G711_PLC,
    burst_ratio: float = 1.0,
) -> float:
    """MOS estimate of a G.711 call from delay, loss and jitter."""
    return mos_from_r(
        r_factor(one_way_delay_ms, loss_ratio, jitter_ms, bpl=bpl, burst_ratio=burst_ratio)
    )
