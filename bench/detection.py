"""The personal-data detector's figures for ``make bench``: quality against Presidio on Presidio's own cases, speed
against Presidio on the same inputs, and the cost of the worst-case shapes (µs per KiB, linear growth)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import adversarial, pii_quality
from bench.presidio import PresidioUnavailable, presidio_python, presidio_side
from bench.workload import business_context
from ingress.engine.personal_data import Scanner, text_categories

MIB = 1024 * 1024


def _business_text(size: int) -> str:
    """The string values of the bench's business context of about ``size`` bytes, as one text."""
    values: list[str] = []
    for record in business_context(size)["records"]:
        values.extend(str(value) for value in record.values())
    return " ".join(values)[:size]


def _scan_key(key: str) -> object:
    scanner = Scanner()
    scanner.scan({key: "x"}, "context")
    return scanner.findings()


def cost(attempts: int = 5) -> dict[str, Any]:
    """For every worst-case shape, µs per KiB at 64 KiB and the growth from 8 KiB to 64 KiB (linear: 8)."""
    shapes: dict[str, dict[str, float]] = {}
    for name, build in adversarial.SHAPES.items():
        us_per_kib, growth = adversarial.growth(text_categories, build, attempts)
        shapes[name] = {"us_per_kib": round(us_per_kib, 1), "growth": round(growth, 1)}
    for name, build in adversarial.KEY_SHAPES.items():
        us_per_kib, growth = adversarial.growth(_scan_key, build, attempts)
        shapes[name] = {"us_per_kib": round(us_per_kib, 1), "growth": round(growth, 1)}
    worst = max(shapes, key=lambda name: shapes[name]["us_per_kib"])
    steepest = max(shapes, key=lambda name: shapes[name]["growth"])
    return {
        "shapes": shapes,
        "worst_us_per_kib": shapes[worst]["us_per_kib"],
        "worst_shape": worst,
        "max_growth": shapes[steepest]["growth"],
        "steepest_shape": steepest,
    }


def quality(cache: Path, presidio_mode: str, minimum_s: float) -> dict[str, Any]:
    """Recall and precision per category for both detectors, and the speed ratio, when the corpus is here."""
    folder = pii_quality.corpus_dir()
    if folder is None:
        return {"skipped": "the Presidio corpus (presidio_cases.json) is not beside this checkout"}
    cases = pii_quality.load_cases(folder)
    scores = pii_quality.score(cases, text_categories, pii_quality.SHARED + pii_quality.CONTEXT)
    large = _business_text(MIB)
    result: dict[str, Any] = {
        "cases": len(cases),
        "ip_excluded": pii_quality.excluded_addresses(cases),
        "ours": pii_quality.report(scores),
        "ours_seconds_per_pass": pii_quality.seconds_per_pass(cases, text_categories, minimum_s),
        "ours_seconds_per_mib": adversarial.cpu_seconds(lambda: text_categories(large), attempts=3),
    }
    if presidio_mode == "skip":
        result["presidio"] = "skipped (--opa skip)"
        return result
    try:
        python = presidio_python(cache, install=presidio_mode == "build")
        if python is None:
            result["presidio"] = f"skipped: presidio-analyzer is not installed in {cache} (--opa build installs it)"
            return result
        with tempfile.TemporaryDirectory() as scratch:
            large_file = Path(scratch) / "large.txt"
            large_file.write_text(large, encoding="utf-8")
            theirs = presidio_side(python, folder, minimum_s, large_file)
    except PresidioUnavailable as exc:
        result["presidio"] = f"skipped: {exc}"
        return result
    result["presidio"] = theirs["figures"]
    result["speed_ratio_cases"] = round(theirs["seconds_per_pass"] / result["ours_seconds_per_pass"], 1)
    result["speed_ratio_mib"] = round(theirs["seconds_per_mib"] / result["ours_seconds_per_mib"], 1)
    result["presidio_seconds_per_pass"] = theirs["seconds_per_pass"]
    result["presidio_seconds_per_mib"] = theirs["seconds_per_mib"]
    return result


_SPEED_FIELDS = (
    "ours_seconds_per_pass",
    "presidio_seconds_per_pass",
    "speed_ratio_cases",
    "ours_seconds_per_mib",
    "presidio_seconds_per_mib",
    "speed_ratio_mib",
)


def speed(quality: dict[str, Any]) -> dict[str, Any]:
    """The speed figures of a quality run: CPU seconds of both sides and the ratios (None where not measured)."""
    figure = {field: quality.get(field) for field in _SPEED_FIELDS}
    ratios = [value for value in (figure["speed_ratio_cases"], figure["speed_ratio_mib"]) if value is not None]
    figure["ratio"] = min(ratios) if ratios else None
    return figure


def meets_presidio(figures: dict[str, Any]) -> bool | None:
    """Whether ours is at or above Presidio's recall and precision for each of the six shared categories and
    together, and the four context categories are detected (recall > 0): None when either side is missing."""
    ours, theirs = figures.get("ours"), figures.get("presidio")
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return None
    for category in (*pii_quality.SHARED, "all_shared"):
        for measure in ("recall", "precision"):
            if ours[category][measure] < theirs[category][measure]:
                return False
    return all(ours[category]["recall"] > 0 for category in pii_quality.CONTEXT)


def main() -> None:
    """``python -m bench.detection [--presidio build|cached|skip]``: the detection figures alone, as JSON."""
    import argparse
    import json
    import sys

    from bench.environment import BENCH_STATE

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--presidio", choices=("build", "cached", "skip"), default="build")
    args = parser.parse_args()
    figures = {"detection_cost": cost(), "detection_quality": quality(BENCH_STATE / "presidio", args.presidio, 2.0)}
    sys.stdout.write(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
