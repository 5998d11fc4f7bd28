"""Detection quality on Microsoft Presidio's own recognizer test cases, when the corpus is beside the checkout
(``../shared/pii-corpus``, or ``PII_CORPUS_DIR``); a clone without it skips with a message.

The targets are Presidio's figures on the same cases with its pattern recognizers (no spaCy model), as the
project measured them per (text, category); ``make bench`` measures Presidio itself side by side.
"""

from __future__ import annotations

import pytest

from bench import pii_quality
from ingress.engine.personal_data import text_categories

# Presidio's recall and precision on these cases, per category, rounded down.
PRESIDIO = {
    "email": (1.00, 1.00),
    "phone": (0.96, 0.93),
    "payment_card": (1.00, 1.00),
    "iban": (1.00, 1.00),
    "ssn": (0.92, 0.92),
    "ip_address": (1.00, 1.00),
    "all_shared": (0.99, 0.99),
}
CONTEXT_RECALL = 0.85  # passport, bank account, driver's licence, ITIN: detected in free text, Presidio 0.88-1.00


@pytest.fixture(scope="module")
def figures() -> dict[str, dict[str, float | int]]:
    folder = pii_quality.corpus_dir()
    if folder is None:
        pytest.skip("Presidio's test corpus (presidio_cases.json) is not beside this checkout: quality not measured")
    cases = pii_quality.load_cases(folder)
    scores = pii_quality.score(cases, text_categories, pii_quality.SHARED + pii_quality.CONTEXT)
    result = pii_quality.report(scores)
    for category, figure in result.items():
        print(f"{category:16s} recall {figure['recall']:.3f} precision {figure['precision']:.3f}")
    return result


@pytest.mark.parametrize("category", sorted(PRESIDIO))
def test_shared_categories_at_or_above_presidio(figures: dict[str, dict[str, float | int]], category: str) -> None:
    recall, precision = PRESIDIO[category]
    assert figures[category]["recall"] >= recall
    assert figures[category]["precision"] >= precision


@pytest.mark.parametrize("category", pii_quality.CONTEXT)
def test_context_categories_are_detected_in_free_text(
    figures: dict[str, dict[str, float | int]], category: str
) -> None:
    assert figures[category]["recall"] >= CONTEXT_RECALL
    assert figures[category]["precision"] >= CONTEXT_RECALL
