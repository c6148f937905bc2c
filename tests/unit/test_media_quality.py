"""E-model (ITU-T G.107) R-factor and MOS estimates."""

from __future__ import annotations

import pytest

from media.quality import (
    BPL_G711_NO_PLC,
    TerminalParams,
    effective_delay_ms,
    effective_ie,
    mos,
    mos_from_r,
    r_factor,
)


def test_default_parameters_give_the_published_r() -> None:
    # G.107: with all default values R = 93.2 (Ro 94.77, Is 1.41, Id 0.15)
    assert r_factor(fold_jitter=False) == pytest.approx(93.2, abs=0.05)
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.01)


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (-5, 1.0),
        (0, 1.0),
        (50, 2.575),
        (60, 3.1),
        (80, 4.024),
        (93.2, 4.4094),
        (100, 4.5),
        (120, 4.5),
    ],
)
def test_mos_from_r(r: float, expected: float) -> None:
    assert mos_from_r(r) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("loss", "bpl", "expected"),
    [
        (0.0, 25.1, 0.0),
        (0.01, 25.1, 95 / 26.1),
        (0.05, 25.1, 95 * 5 / 30.1),
        (0.01, BPL_G711_NO_PLC, 95 / 5.3),
        (1.0, 25.1, 95 * 100 / 125.1),
        (2.0, 25.1, 95 * 100 / 125.1),  # clamped
    ],
)
def test_effective_equipment_impairment(loss: float, bpl: float, expected: float) -> None:
    assert effective_ie(loss, bpl) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("delay", "r_min", "r_max"),
    [
        (0, 93.0, 93.3),
        (100, 90.0, 91.5),
        (150, 89.0, 90.5),
        (200, 85.0, 87.0),
        (300, 71.0, 74.0),
        (400, 60.0, 64.0),
    ],
)
def test_delay_impairment_curve(delay: float, r_min: float, r_max: float) -> None:
    assert r_min <= r_factor(delay, fold_jitter=False) <= r_max


@pytest.mark.parametrize(
    ("delay", "loss", "jitter", "mos_min", "mos_max"),
    [
        (20, 0.0, 2, 4.35, 4.42),  # LAN call
        (80, 0.01, 10, 4.15, 4.30),  # good WAN
        (150, 0.03, 30, 3.7, 4.0),  # mediocre
        (300, 0.10, 60, 1.0, 3.2),  # bad
    ],
)
def test_typical_calls(
    delay: float, loss: float, jitter: float, mos_min: float, mos_max: float
) -> None:
    assert mos_min <= mos(delay, loss, jitter) <= mos_max


def test_monotonic_in_every_impairment() -> None:
    base = r_factor(50, 0.01, 10)
    assert r_factor(150, 0.01, 10) < base
    assert r_factor(50, 0.05, 10) < base
    assert r_factor(50, 0.01, 40) < base
    assert r_factor(50, 0.01, 10, bpl=BPL_G711_NO_PLC) < base
    assert effective_delay_ms(50, 10) == 80


def test_terminal_parameters_matter_and_bad_input() -> None:
    noisy = TerminalParams(ps=60, pr=60)
    assert r_factor(terminal=noisy) < r_factor()
    with pytest.raises(ValueError):
        r_factor(float("nan"))
