"""RFC 4733 events, the de-duplicator and the in-band Goertzel detector."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from media.dtmf import (
    COL_FREQS,
    KEYPAD,
    ROW_FREQS,
    DtmfError,
    EventDeduplicator,
    InbandDetector,
    TelephoneEvent,
    build_event,
    event_code,
    event_packets,
    goertzel_power,
    parse_event,
)

# ---- RFC 4733 payloads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (TelephoneEvent(1, False, 10, 160), b"\x01\x0a\x00\xa0"),
        (TelephoneEvent(11, True, 63, 0xFFFF), b"\x0b\xbf\xff\xff"),
        (TelephoneEvent(16, True, 0, 800), b"\x10\x80\x03\x20"),
    ],
)
def test_event_wire_format(event: TelephoneEvent, wire: bytes) -> None:
    assert build_event(event) == wire
    assert parse_event(wire) == event


@pytest.mark.parametrize(
    ("code", "digit"),
    [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (15, "D"), (16, "!"), (17, None)],
)
def test_event_digits(code: int, digit: str | None) -> None:
    assert TelephoneEvent(code, False, 0, 0).digit == digit
    if digit is not None:
        assert event_code(digit) == code


@pytest.mark.parametrize("bad", [b"", b"\x01\x02\x03"])
def test_bad_payload(bad: bytes) -> None:
    with pytest.raises(DtmfError):
        parse_event(bad)


@pytest.mark.parametrize("bad", ["", "E", "12", "x"])
def test_bad_digit(bad: str) -> None:
    with pytest.raises(DtmfError):
        event_code(bad)


def test_event_packets_shape() -> None:
    pkts = event_packets("5", duration_ms=100)
    events = [parse_event(p) for p, _ in pkts]
    assert [m for _, m in pkts] == [True, False, False, False, False, False, False]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert all(e.event == 5 for e in events)


# ---- de-duplication ---------------------------------------------------------------


def press(digit: str, ts: int, duration_ms: int = 100) -> list[tuple[int, bytes]]:
    return [(ts, p) for p, _ in event_packets(digit, duration_ms)]


def feed_all(dd: EventDeduplicator, packets: list[tuple[int, bytes]]) -> str:
    out = []
    for i, (ts, payload) in enumerate(packets):
        out += [d.digit for d in dd.feed(ts, payload, now=i * 0.02)]
    return "".join(out)


def test_sequence_reported_once_each_in_order() -> None:
    packets = press("1", 1000) + press("2", 3000) + press("1", 5000) + press("#", 7000)
    dd = EventDeduplicator()
    assert feed_all(dd, packets) == "121#"


def test_lost_end_packets_reported_when_next_press_starts() -> None:
    first = [p for p in press("4", 1000) if not parse_event(p[1]).end]
    dd = EventDeduplicator()
    assert feed_all(dd, first + press("5", 3000)) == "45"


def test_lost_end_packets_reported_after_timeout() -> None:
    dd = EventDeduplicator(timeout=0.5)
    first = [p for p in press("7", 1000) if not parse_event(p[1]).end]
    assert feed_all(dd, first) == ""
    timer = dd.get_timer()
    assert timer is not None
    assert dd.poll(timer - 0.1) == []
    digits = dd.poll(timer)
    assert [d.digit for d in digits] == ["7"] and digits[0].duration_ms == 80
    assert dd.poll(timer + 1) == [] and dd.get_timer() is None


def test_reordered_and_retransmitted_packets() -> None:
    a, b = press("8", 1000), press("9", 3000)
    packets = a[:3] + a[4:5] + a[3:4] + a[5:] + b[:2] + a[-1:] + b[2:] + a[-2:]
    dd = EventDeduplicator()
    assert feed_all(dd, packets) == "89"


def test_only_end_packets_received() -> None:
    dd = EventDeduplicator()
    packets = [p for p in press("0", 1000) if parse_event(p[1]).end]
    assert feed_all(dd, packets) == "0"


# ---- in-band detection ------------------------------------------------------------

RATE = 8000


def tone_seq(
    digits: str,
    on_ms: int,
    off_ms: int,
    amp: float,
    rng: np.random.Generator,
    lead_ms: int = 37,
    twist_db: float = 0.0,
) -> npt.NDArray[np.float64]:
    parts = [np.zeros(lead_ms * RATE // 1000)]
    for d in digits:
        r = next(i for i, row in enumerate(KEYPAD) if d in row)
        c = KEYPAD[r].index(d)
        t = np.arange(on_ms * RATE // 1000) / RATE
        phase = rng.uniform(0, 2 * np.pi, 2)
        col_amp = amp * 10 ** (twist_db / 20)
        parts.append(
            amp * np.sin(2 * np.pi * ROW_FREQS[r] * t + phase[0])
            + col_amp * np.sin(2 * np.pi * COL_FREQS[c] * t + phase[1])
        )
        parts.append(np.zeros(off_ms * RATE // 1000))
    return np.concatenate(parts)


def run_detector(
    signals: list[npt.NDArray[np.float64]], noise: float, rng: np.random.Generator
) -> list[str]:
    n = max(len(s) for s in signals)
    n += (-n) % 160
    mat = np.zeros((len(signals), n))
    for i, s in enumerate(signals):
        mat[i, : len(s)] = s
    mat += rng.normal(0, noise, mat.shape) if noise else 0
    pcm = np.clip(np.round(mat), -32768, 32767).astype(np.int16)
    det = InbandDetector()
    found = [""] * len(signals)
    for start in range(0, n, 160):
        for slot, digit in det.process(pcm[:, start : start + 160]):
            found[slot] += digit.digit
    return found


@pytest.mark.parametrize(
    ("digits", "on_ms", "off_ms", "amp", "noise"),
    [
        ("0123456789*#ABCD", 100, 100, 4000, 0),
        ("0123456789*#ABCD", 70, 60, 4000, 300),  # ~20 dB SNR
        ("1859#", 50, 50, 2000, 150),
        ("5551212", 200, 80, 10000, 1000),
        ("77", 80, 60, 1200, 50),  # same key twice with a gap
        ("9", 1500, 0, 3000, 200),  # a long press is one digit
        ("*0#", 60, 45, 600, 40),  # weak tones near -30 dBm0
    ],
)
def test_inband_sequences(digits: str, on_ms: int, off_ms: int, amp: float, noise: float) -> None:
    rng = np.random.default_rng(len(digits) + on_ms)
    signals = [tone_seq(digits, on_ms, off_ms, amp, rng, lead_ms=lead) for lead in (0, 7, 13, 37)]
    assert run_detector(signals, noise, rng) == [digits] * 4


def test_many_streams_at_once_are_independent() -> None:
    rng = np.random.default_rng(5)
    seqs = ["".join(rng.choice(list("0123456789*#"), 6)) for _ in range(40)]
    signals = [tone_seq(s, 80, 70, 3000, rng, lead_ms=int(rng.integers(0, 60))) for s in seqs]
    signals += [np.zeros(RATE)] * 10  # silent streams in the same matrix
    assert run_detector(signals, 100, rng) == seqs + [""] * 10


@pytest.mark.parametrize(
    ("twist_db", "detected"),
    [(0.0, True), (3.0, True), (-7.0, True), (6.0, False), (-11.0, False)],
)
def test_twist_limits(twist_db: float, detected: bool) -> None:
    rng = np.random.default_rng(1)
    sig = tone_seq("5", 120, 60, 3000, rng, twist_db=twist_db)
    assert run_detector([sig], 0, rng) == (["5"] if detected else [""])


def test_short_blip_is_not_a_digit() -> None:
    rng = np.random.default_rng(2)
    sig = tone_seq("3", 20, 100, 5000, rng, lead_ms=0)  # exactly one frame
    assert run_detector([sig], 0, rng) == [""]


def speech_like(seconds: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Coloured noise with formant-like resonances and a 4 Hz syllable envelope."""
    n = int(seconds * RATE)
    x = rng.normal(0, 1, n)
    out = np.zeros(n)
    y1 = y2 = 0.0
    for i in range(n):  # a 2-pole resonator around 700 Hz plus the raw noise
        y = x[i] + 1.6 * y1 * np.cos(2 * np.pi * 700 / RATE) - 0.8 * y2
        out[i] = y + 0.5 * x[i]
        y2, y1 = y1, y
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    # voiced parts: a 120 Hz glottal pulse train with harmonics
    t = np.arange(n) / RATE
    voiced = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 30))
    sig = out * env + 3 * voiced * env
    return 8000 * sig / np.max(np.abs(sig))


def test_no_false_detection_on_speech_and_music() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(3 * RATE) / RATE
    signals = [
        speech_like(3.0, rng),
        10000 * np.sin(2 * np.pi * 440 * t),  # A4
        6000 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 880 * t)),
        5000 * np.sin(2 * np.pi * np.outer(t, [261.6, 329.6, 392.0])).sum(axis=1),  # C major
        8000 * np.sin(2 * np.pi * 697 * t),  # one DTMF tone alone
        8000 * np.sin(2 * np.pi * (300 + 1200 * t / 3) * t),  # a sweep
        rng.normal(0, 5000, len(t)),  # white noise
        np.zeros(len(t)),
    ]
    assert run_detector(signals, 0, rng) == [""] * len(signals)


def test_goertzel_power_matches_the_recurrence() -> None:
    rng = np.random.default_rng(4)
    frames = rng.normal(0, 1000, (3, 160))
    freqs = ROW_FREQS + COL_FREQS
    fast = goertzel_power(frames, freqs)
    for i in range(3):
        for k, f in enumerate(freqs):
            coeff = 2 * np.cos(2 * np.pi * f / RATE)
            s1 = s2 = 0.0
            for x in frames[i]:
                s1, s2 = x + coeff * s1 - s2, s1
            # |y[N-1]|^2 of the Goertzel filter is |X(f)|^2 for any f, integer bin or not
            power = s1 * s1 + s2 * s2 - coeff * s1 * s2
            assert fast[i, k] == pytest.approx(power, rel=1e-3)


def test_detector_rejects_bad_shape() -> None:
    with pytest.raises(ValueError):
        InbandDetector().process(np.zeros((2, 80), dtype=np.int16))
