"""Word diff of run outputs: a 2,000-word output against a variant with every 10th word
changed (the comparison page's worst ordinary case), longer texts, and a cached repeat.

Target: 2,000 words <= 250 ms (the old token diff took 18 s to minutes: roughly cubic).

    python bench/bench_diff.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maximui.settings")
os.environ.setdefault("MAXIMUI_TESTING", "1")
import django  # noqa: E402

django.setup()
from django.core.cache import cache  # noqa: E402

from prompts_app.diffing import MAX_WORD_DIFF_CHARS, word_diff  # noqa: E402

TARGET_MS = 250
VOCABULARY = "the a of to and in is was for on that with your order refund parcel".split() + [
    f"word{i}" for i in range(300)
]


def texts(words: int, seed: int = 5) -> tuple[str, str]:
    rng = random.Random(seed)
    old = [rng.choice(VOCABULARY) for _ in range(words)]
    new = [f"changed{i}" if i % 10 == 0 else word for i, word in enumerate(old)]
    lines = lambda ws: "\n".join(" ".join(ws[i : i + 12]) for i in range(0, len(ws), 12))  # noqa: E731
    return lines(old), lines(new)


def timed(old: str, new: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        cache.clear()
        started = time.perf_counter()
        word_diff(old, new)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    figures = {}
    for words in (500, 2_000, 8_000, 50_000):
        old, new = texts(words)
        figures[words] = timed(old, new, repeats=5 if words <= 10_000 else 1)
        kind = "word diff" if len(old) + len(new) <= MAX_WORD_DIFF_CHARS else "line diff (past the word-diff size)"
        print(f"{words:>7,} words, every 10th changed: {figures[words]:8.1f} ms  {kind}")
    old, new = texts(2_000)
    word_diff(old, new)
    started = time.perf_counter()
    word_diff(old, new)
    cached = (time.perf_counter() - started) * 1000
    print(f"  2,000 words again (cached):        {cached:8.2f} ms")
    ok = figures[2_000] <= TARGET_MS
    print(
        f"RESULT diff_2000_words_ms={figures[2_000]:.1f} diff_8000_words_ms={figures[8_000]:.1f} "
        f"diff_50000_words_ms={figures[50_000]:.1f} cached_ms={cached:.2f} target_ms={TARGET_MS} "
        f"all_targets_met={ok}"
    )


if __name__ == "__main__":
    main()
