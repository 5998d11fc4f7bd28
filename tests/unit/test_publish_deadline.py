"""The publish deadline fits the broker's recent acknowledgements while it is acknowledging, and falls back to the
configured timeout when it is not (a broker really down spools after ``ack_timeout_s``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.spool import DiskSpool
from ingress.check.publisher import DecisionPublisher


def _publisher(tmp_path: Path, clock: list[float]) -> DecisionPublisher:
    return DecisionPublisher(
        lambda: None, DiskSpool(tmp_path), ack_timeout_s=0.5, max_ack_wait_s=5.0, monotonic=lambda: clock[0]
    )


def test_without_recent_acks_the_deadline_is_the_configured_timeout(tmp_path: Path) -> None:
    assert _publisher(tmp_path, [0.0]).deadline_s() == 0.5


def test_slow_acks_of_a_live_broker_stretch_the_deadline_up_to_its_cap(tmp_path: Path) -> None:
    clock = [100.0]
    publisher = _publisher(tmp_path, clock)
    for _ in range(100):
        publisher.observe_ack(0.004)
    assert publisher.deadline_s() == 0.5  # fast acks: the timeout as configured
    for _ in range(28):
        publisher.observe_ack(0.7)
    assert publisher.deadline_s() == pytest.approx(2.1)  # three times the p99 of the recent acks
    for _ in range(64):
        publisher.observe_ack(3.0)
    assert publisher.deadline_s() == 5.0
    clock[0] += 2.5  # no ack for longer than healthy_s: the broker may be down
    assert publisher.deadline_s() == 0.5
