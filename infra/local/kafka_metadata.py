"""What a live node of the local KRaft cluster (``kafka_cluster.py``) reports: the registered brokers, a topic's
partitions and its configuration. Through aiokafka's admin client, imported when called, so that the cluster's
start and stop stay standard library only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from infra.local.kafka_node import ClusterError


@contextlib.asynccontextmanager
async def _admin(servers: list[str]) -> AsyncIterator[Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=5000)
    try:
        await admin.start()
        yield admin
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def registered_brokers(servers: list[str]) -> set[int]:
    """The ids of the brokers the cluster metadata lists."""
    async with _admin(servers) as admin:
        cluster = await admin.describe_cluster()
        return {int(b["node_id"]) for b in cluster["brokers"]}


async def describe_partitions(servers: list[str], topic: str) -> dict[int, dict[str, Any]]:
    """partition -> ``{"leader", "replicas", "isr"}`` of ``topic`` (leader -1: none)."""
    async with _admin(servers) as admin:
        [described] = await admin.describe_topics([topic])
    if described.get("error_code", 0) != 0:
        raise ClusterError(f"topic {topic}: error {described['error_code']}")
    return {
        int(p["partition"]): {"leader": int(p["leader"]), "replicas": list(p["replicas"]), "isr": list(p["isr"])}
        for p in described["partitions"]
    }


async def describe_topic_config(servers: list[str], topic: str) -> dict[str, str]:
    """The topic's effective configuration (``min.insync.replicas`` among it)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async with _admin(servers) as admin:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    config: dict[str, str] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                raise ClusterError(f"topic {topic}: {resource['error_message']}")
            config.update({entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]})
    return config
