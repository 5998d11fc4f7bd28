"""The one receipt keyring of a test run (a module of helpers, not tests).

Every ingress the tests start signs receipts with it and every audit writer checks receipts against it, as the
processes of one deployment share ``RECEIPT_KEYS_DIR`` (or ``RECEIPT_SIGNING_KEY``): they all read and write the
run's one decisions topic, and a writer stores only decisions whose receipt verifies against the published keys.
Removed when the test process exits.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

_FOLDER = tempfile.TemporaryDirectory(prefix="governance-test-receipt-keys-")
RECEIPT_KEYS_DIR = Path(_FOLDER.name)
