"""The test run is a local run: ``ENVIRONMENT=test`` unless the caller says otherwise (unset means production,
``infra/settings.py``). Set before any test module builds settings, and inherited by the processes tests start."""

import os

os.environ.setdefault("ENVIRONMENT", "test")
