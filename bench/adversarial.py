"""Worst-case inputs for the personal-data detector: for every pattern, the shapes that make a backtracking engine
work hardest (long runs of what a pattern repeats, what follows each keyword and prefix, separators and digits
that almost make a number, nested brackets, long keys, text that normalisation lengthens).

Each shape builds a string of about ``size`` characters. ``tests/unit/test_detection_cost.py`` checks that the
cost of each grows linearly (64 KiB costs at most 10x 8 KiB); ``make bench`` reports the worst microseconds per
KiB across them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

SMALL: Final = 8 * 1024
LARGE: Final = 64 * 1024


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: unit * max(1, size // len(unit))


def _after(prefix: str, unit: str, end: str = "!") -> Callable[[int], str]:
    return lambda size: prefix + unit * max(1, (size - len(prefix) - len(end)) // len(unit)) + end


SHAPES: Final[dict[str, Callable[[int], str]]] = {
    # Date of birth: whitespace, colons and dashes after each keyword, and no date.
    "born + spaces": _after("born", " "),
    "DOB + spaces": _after("DOB", " "),
    "date of birth + spaces": _after("date of birth", " "),
    "birthday + colon and spaces": _after("birthday", ": "),
    "born on repeated": _repeat("born on "),
    "DOB: repeated": _repeat("DOB: "),
    "born + almost a date": _repeat("born 12 March 19 "),
    # Numbers: long digit runs, separator runs, almost-numbers.
    "digits": _repeat("1"),
    "digit space": _repeat("1 "),
    "digit dash": _repeat("1-"),
    "digit dot": _repeat("1."),
    "groups of three": _repeat("415 "),
    "groups of four": _repeat("4111 "),
    "dash groups": _repeat("078-05-"),
    "plus prefixes": _repeat("+1 "),
    "plus digits": _repeat("+44 20 "),
    "open brackets": _repeat("(1"),
    "nested brackets": _repeat("((((1))))"),
    "area codes": _repeat("(415)"),
    "separators only": _repeat(" .-"),
    # E-mail: local parts without domains, domains without TLDs, many labels.
    "at signs": _repeat("a@"),
    "many labels": _repeat("x@" + "a." * 60 + "1 "),
    "long label": _after("x@", "a"),
    "dots after at": _after("x@", "."),
    # IBAN: country codes and check digits with no account.
    "country codes": _repeat("GB82 "),
    "iban + letters": _after("GB82", " A"),
    "lower-case codes": _repeat("ab12 "),
    # IP addresses.
    "dotted runs": _repeat("1.1."),
    "colons": _repeat(":"),
    "hex and colons": _repeat("1:"),
    "double colons then hex": _after("::", "a"),
    "hex run": _after("", "a", "1"),
    "hex pairs": _repeat("0a"),
    # Naming words for context-only categories, with and without numbers after them.
    "passport repeated": _repeat("passport "),
    "passport + digit": _repeat("passport 1 "),
    "driver license + tokens": _after("driver license ", "A1"),
    "account number + digits": _repeat("account number 12 "),
    # Ordinary and Unicode text.
    "prose": _repeat("The quick brown fox jumps over the lazy dog. "),
    "accented digits": _repeat("é1 "),
    "zero-width between digits": _repeat("1\u200b"),
    "full-width digits": _repeat("\uff14\uff11 "),
    "expanding ligature": _repeat("\ufdfa"),
}

KEY_SHAPES: Final[dict[str, Callable[[int], str]]] = {
    # Key names: camel-case words, digits and letters, separators.
    "letter digit key": _repeat("a1"),
    "camel words key": _repeat("aB"),
    "snake words key": _repeat("a_"),
    "capitals key": _repeat("AAa"),
}


def cpu_seconds(work: Callable[[], object], repeat: int = 1, attempts: int = 5) -> float:
    """The least CPU time (not wall time: other processes do not count) of ``attempts`` runs of ``repeat`` calls."""
    best = float("inf")
    for _ in range(attempts):
        start = time.process_time()
        for _ in range(repeat):
            work()
        best = min(best, time.process_time() - start)
    return best


def growth(scan: Callable[[str], object], build: Callable[[int], str], attempts: int = 5) -> tuple[float, float]:
    """(microseconds per KiB at LARGE, cost of one LARGE scan / cost of one SMALL scan) for one shape.

    Linear is LARGE / SMALL = 8 (the tests allow 10; quadratic would be 64). The small input is timed over
    LARGE / SMALL scans, so that both measurements cover as many characters and neither is lost in timer noise.
    """
    small, large = build(SMALL), build(LARGE)
    times = LARGE // SMALL
    small_s = cpu_seconds(lambda: scan(small), repeat=times, attempts=attempts) / times
    large_s = cpu_seconds(lambda: scan(large), attempts=attempts)
    return large_s * 1e6 / (len(large) / 1024), large_s / max(small_s, 1e-9)


_WORST_BODY_SHAPES: Final = (
    "nested brackets",
    "groups of three",
    "area codes",
    "DOB: repeated",
    "passport + digit",
    "expanding ligature",
)
_STRING = 65_000  # under the check request's 64 KiB string limit


def worst_case_body() -> dict[str, object]:
    """A check of about 1 MiB (the body limit, as JSON with its non-ASCII text escaped) made of the most expensive
    shapes we know, in a prompt and nine context fields: what a noisy neighbour sends."""
    context = {
        f"field_{i}": SHAPES[_WORST_BODY_SHAPES[i % len(_WORST_BODY_SHAPES)]](_STRING)[:_STRING] for i in range(9)
    }
    prompt = SHAPES["born + spaces"](_STRING)[:_STRING]
    return {"operations": [{"type": "llm_call", "model": "gpt-4", "prompt": prompt}], "context": context}
