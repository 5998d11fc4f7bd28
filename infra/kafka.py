"""Kafka broker factory (FastStream over aiokafka).

Every producer is idempotent with ``acks=all``: a decision we answered for must be stored exactly once, even
when the producer retries after a lost acknowledgement.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker


def build_kafka_broker(bootstrap_servers: str, *, client_id: str = "governance", **kwargs: Any) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers.split(","),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=kwargs.pop("request_timeout_ms", 5000),
        # a plain logger, so FastStream's service messages go through our JSON log handler
        logger=kwargs.pop("logger", logging.getLogger("faststream.kafka")),
        **kwargs,
    )
