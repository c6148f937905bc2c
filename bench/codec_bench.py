"""G.711 kernel throughput: decode + encode of 1,000 streams x 160 samples per tick.

Run: ``.venv/bin/python bench/codec_bench.py [--streams 1000] [--ticks 2000]``.
Prints samples/s for decode, encode and the decode+encode round (target >= 200 M/s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from media import g711


def bench(streams: int, ticks: int, samples: int = 160) -> dict[str, float]:
    """Seconds per tick for each kernel, best of three runs of ``ticks`` ticks."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (streams, samples), dtype=np.uint8)
    pcm = np.empty((streams, samples), dtype=np.int16)
    enc = np.empty((streams, samples), dtype=np.uint8)
    rows = g711.codec_index([g711.PT_PCMU if i % 2 else g711.PT_PCMA for i in range(streams)])
    kernels = {
        "decode": lambda: g711.decode(codes, g711.PT_PCMU, out=pcm),
        "encode": lambda: g711.encode(pcm, g711.PT_PCMU, out=enc),
        "decode+encode": lambda: g711.encode(g711.decode(codes, 0, out=pcm), 0, out=enc),
        "decode+encode mixed PCMU/PCMA": lambda: g711.encode_mixed(
            g711.decode_mixed(codes, rows), rows
        ),
    }
    result = {}
    for name, fn in kernels.items():
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(ticks):
                fn()
            best = min(best, (time.perf_counter() - start) / ticks)
        result[name] = best
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args()
    n = args.streams * 160
    print(f"G.711 kernels, {args.streams} streams x 160 samples per tick")
    for name, per_tick in bench(args.streams, args.ticks).items():
        print(f"  {name:32s} {per_tick * 1e6:8.1f} us/tick  {n / per_tick / 1e6:8.1f} M samples/s")


if __name__ == "__main__":
    main()
