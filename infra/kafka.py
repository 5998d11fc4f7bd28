"""Kafka client construction: the FastStream broker (producer and consumers) and the options for plain aiokafka
clients (admin, ad-hoc consumers), all with the same authentication and encryption (``KafkaSecurity``).

Every producer is idempotent with ``acks=all``: a decision we answered for must be stored exactly once, even
when the producer retries after a lost acknowledgement.

The security settings are ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``,
``KAFKA_SASL_PASSWORD`` and ``KAFKA_SSL_CAFILE`` / ``KAFKA_SSL_CERTFILE`` / ``KAFKA_SSL_KEYFILE``
(``infra.settings.KafkaClientSettings``). A factory called without ``security`` reads them from the environment,
as every deployable's settings do, so no client can be built that skips them.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from infra.settings import KafkaClientSettings

_SASL: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


@dataclass(frozen=True)
class KafkaSecurity:
    """Authentication and encryption of a Kafka client. The default is PLAINTEXT (the local stack)."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""

    @classmethod
    def from_settings(cls, settings: KafkaClientSettings) -> KafkaSecurity:
        return cls(
            protocol=settings.kafka_security_protocol,
            mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )

    @classmethod
    def from_environment(cls) -> KafkaSecurity:
        """The ``KAFKA_*`` security settings of this process (environment or ``.env``), validated."""
        return cls.from_settings(KafkaClientSettings())

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context verifying the broker (hostname included) against the CA file, or the system's CAs; with a
        client certificate for mutual TLS. None without TLS."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile or None)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.mechanism, sasl_plain_username=self.username, sasl_plain_password=self.password
            )
        return options

    def broker_security(self) -> BaseSecurity | None:
        """The same, as FastStream's ``security=`` object (it maps it back to aiokafka's options)."""
        context = self.ssl_context()
        if self.uses_sasl:
            return _SASL[self.mechanism](self.username, self.password, ssl_context=context, use_ssl=self.uses_tls)
        if self.uses_tls:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        return None


def kafka_client_options(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """Security options for a plain aiokafka client; from the environment when ``security`` is not given."""
    return (security or KafkaSecurity.from_environment()).client_options()


def build_kafka_broker(
    bootstrap_servers: str,
    *,
    client_id: str = "governance",
    security: KafkaSecurity | None = None,
    **kwargs: Any,
) -> KafkaBroker:
    """A FastStream broker; its producer and subscribers authenticate with ``security`` (from the environment when
    not given)."""
    return KafkaBroker(
        bootstrap_servers.split(","),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=kwargs.pop("request_timeout_ms", 5000),
        security=(security or KafkaSecurity.from_environment()).broker_security(),
        # a plain logger, so FastStream's service messages go through our JSON log handler
        logger=kwargs.pop("logger", logging.getLogger("faststream.kafka")),
        **kwargs,
    )
