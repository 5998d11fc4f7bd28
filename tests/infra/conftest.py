"""Fixtures of the observability tests: a Sentry stand-in (``tests/support/sentry_receiver.py``) and closing the
process-wide Sentry client after a test that turned it on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sentry_sdk

from tests.support.sentry_receiver import EnvelopeReceiver


@pytest.fixture
def sentry_receiver() -> Iterator[EnvelopeReceiver]:
    receiver = EnvelopeReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def sentry_off_afterwards() -> Iterator[None]:
    """sentry_sdk.init is process-wide: close the client so later tests report nothing."""
    yield
    sentry_sdk.flush(timeout=2)
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
