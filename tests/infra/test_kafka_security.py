"""Kafka authentication and encryption settings reach every client we build (infra/kafka.py)."""

from __future__ import annotations

import ast
import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from infra.kafka import KafkaSecurity, build_kafka_broker, kafka_client_options
from infra.settings import CommonSettings, KafkaClientSettings

SCRAM = {
    "ENVIRONMENT": "test",
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "KAFKA_SASL_USERNAME": "governance",
    "KAFKA_SASL_PASSWORD": "s3cret-scram",
}


def _security_options(options: dict[str, Any]) -> dict[str, Any]:
    wanted = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    return {k: options.get(k) for k in wanted}


def test_plaintext_is_the_local_default() -> None:
    security = KafkaSecurity.from_settings(CommonSettings.model_validate({"ENVIRONMENT": "test"}))
    assert security.protocol == "PLAINTEXT"
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.broker_security() is None


def test_sasl_needs_a_username_and_a_password_and_never_echoes_it() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD") as caught:
        CommonSettings.model_validate({**SCRAM, "KAFKA_SASL_USERNAME": ""})
    assert "s3cret-scram" not in str(caught.value)
    settings = CommonSettings.model_validate(SCRAM)
    assert "s3cret-scram" not in repr(settings)
    assert "s3cret-scram" not in repr(KafkaSecurity.from_settings(settings))


def test_ssl_files_need_a_tls_protocol_and_certificate_with_key() -> None:
    with pytest.raises(ValidationError, match="need KAFKA_SECURITY_PROTOCOL=SSL"):
        KafkaClientSettings.model_validate({"KAFKA_SSL_CAFILE": "/ca.pem"})
    with pytest.raises(ValidationError, match="go together"):
        KafkaClientSettings.model_validate({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/c.pem"})
    with pytest.raises(ValidationError, match="KAFKA_SECURITY_PROTOCOL"):
        KafkaClientSettings.model_validate({"KAFKA_SECURITY_PROTOCOL": "PLAIN"})


async def test_scram_settings_reach_the_brokers_producer_and_consumers() -> None:
    security = KafkaSecurity.from_settings(CommonSettings.model_validate(SCRAM))
    broker = build_kafka_broker("127.0.0.1:9092", security=security)
    expected = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "governance",
        "sasl_plain_password": "s3cret-scram",
    }
    # what the producer connects with, and what every subscriber's AIOKafkaConsumer is built with
    assert _security_options(broker._connection_kwargs) == expected
    assert _security_options(broker.config.broker_config.builder.keywords) == expected
    # and a plain aiokafka client built from kafka_client_options
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9092", **security.client_options())
    assert admin._client._security_protocol == "SASL_PLAINTEXT"
    assert admin._client._sasl_mechanism == "SCRAM-SHA-256"
    assert admin._client._sasl_plain_username == "governance"


def test_a_factory_without_security_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SCRAM.items():
        monkeypatch.setenv(name, value)
    broker = build_kafka_broker("127.0.0.1:9092")
    assert broker._connection_kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kafka_client_options()["sasl_plain_username"] == "governance"
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "")
    with pytest.raises(ValidationError):
        build_kafka_broker("127.0.0.1:9092")  # incomplete settings refuse to build a client, never fall back


def _write_ca_and_client(folder: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: Any, ca: bool) -> bytes:
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    ca, cert, key = folder / "ca.pem", folder / "client.pem", folder / "client.key"
    ca.write_bytes(certificate("test-ca", ca_key, "test-ca", ca_key, ca=True))
    cert.write_bytes(certificate("governance", client_key, "test-ca", ca_key, ca=False))
    key.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca, cert, key


async def test_mutual_tls_settings_build_a_verifying_context_with_the_client_certificate(tmp_path: Path) -> None:
    ca, cert, key = _write_ca_and_client(tmp_path)
    settings = KafkaClientSettings.model_validate(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": str(ca),
            "KAFKA_SSL_CERTFILE": str(cert),
            "KAFKA_SSL_KEYFILE": str(key),
        }
    )
    security = KafkaSecurity.from_settings(settings)
    context = security.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    options = security.client_options()
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    broker = build_kafka_broker("127.0.0.1:9093", security=security)
    assert broker._connection_kwargs["security_protocol"] == "SSL"
    assert isinstance(broker.config.broker_config.builder.keywords["ssl_context"], ssl.SSLContext)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9093", **options)
    assert consumer._client._security_protocol == "SSL"


def test_sasl_over_tls_carries_both() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="u", password="p")
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    broker = build_kafka_broker("127.0.0.1:9093", security=security)
    assert broker._connection_kwargs["security_protocol"] == "SASL_SSL"


CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "KafkaBroker"}
PACKAGES = ("ingress", "consumers", "workers", "schemas", "infra")


def _constructions(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in CLIENTS:
                calls.append(node)
    return calls


def _passes_security(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg is None and isinstance(keyword.value, ast.Call):  # **kafka_client_options(...)
            func = keyword.value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in {"kafka_client_options", "client_options"}:
                return True
        if keyword.arg == "security":
            return True
    return False


def test_every_kafka_client_the_deployables_build_carries_the_security_settings(project_root: Path) -> None:
    """A static guard: each AIOKafka* client in our packages takes **kafka_client_options(), and FastStream brokers
    are built only by build_kafka_broker. (bench/ is the benchmark harness against the local stack, infra/local the
    local brokers' own tooling: neither is deployed.)"""
    unguarded = []
    for package in PACKAGES:
        for path in sorted((project_root / package).rglob("*.py")):
            relative = path.relative_to(project_root).as_posix()
            if relative.startswith(("bench/", "infra/local/")):
                continue
            for call in _constructions(path):
                if not _passes_security(call):
                    unguarded.append(f"{relative}:{call.lineno}")
    assert unguarded == []
