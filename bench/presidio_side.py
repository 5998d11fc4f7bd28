"""Presidio's side of the detection comparison, run with the interpreter of the bench's own Presidio environment
(``bench/presidio.py`` makes it): its pattern recognizers, no spaCy model, scored by the same code as ours.

Arguments: the corpus folder, the least seconds to time passes over the cases for, and a file with the large text
both sides scan. Prints one JSON object: the per-category figures, the seconds per pass over the cases and the
seconds for the large text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import pii_quality


def _detector() -> Callable[[str], set[str]]:
    from presidio_analyzer import predefined_recognizers as known  # only in the bench's Presidio environment

    names = (
        "CreditCardRecognizer",
        "IbanRecognizer",
        "UsSsnRecognizer",
        "EmailRecognizer",
        "PhoneRecognizer",
        "IpRecognizer",
        "UsPassportRecognizer",
        "UsBankRecognizer",
        "UsLicenseRecognizer",
        "UsItinRecognizer",
        "AbaRoutingRecognizer",
    )
    recognizers = [getattr(known, name)() for name in names]

    def detect(text: str) -> set[str]:
        found: set[str] = set()
        for recognizer in recognizers:
            for result in recognizer.analyze(text, entities=recognizer.supported_entities, nlp_artifacts=None):
                category = pii_quality.ENTITY_CATEGORY.get(result.entity_type)
                if category is not None:
                    found.add(category)
        return found

    return detect


def main() -> None:
    logging.disable(logging.WARNING)  # the e-mail recognizer warns that it cannot fetch the public suffix list
    folder = Path(sys.argv[1])
    minimum_s = float(sys.argv[2])
    large = Path(sys.argv[3]).read_text(encoding="utf-8")
    cases = pii_quality.load_cases(folder)
    detect = _detector()
    scores = pii_quality.score(cases, detect, pii_quality.SHARED + pii_quality.CONTEXT)
    start = time.process_time()
    detect(large)
    large_s = time.process_time() - start
    result = {
        "figures": pii_quality.report(scores),
        "seconds_per_pass": pii_quality.seconds_per_pass(cases, detect, minimum_s),
        "seconds_per_mib": large_s,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
