-- 0001: the audit log of decisions, one row per DecisionEvent; ReplacingMergeTree on event_id as the last dedup layer.
-- Ordered for per-customer time-range reads; partitioned by month; retention is re-applied at start from
-- AUDIT_RETENTION_DAYS (ALTER TABLE ... MODIFY TTL), 365 days until then. Block-level insert deduplication
-- (insert_deduplication_token per Kafka offset range) needs non_replicated_deduplication_window.
CREATE TABLE IF NOT EXISTS {db}.decisions
(
    event_id            UUID,
    schema_version      UInt8,
    request_id          String,
    customer_id         UUID,
    key_id              String,
    decided_at          DateTime64(3, 'UTC'),
    allowed             Bool,
    decision            LowCardinality(String),
    risk_score          UInt8,
    threshold           UInt8,
    reason              String,
    factor_names        Array(LowCardinality(String)),
    factor_points       Array(Int32),
    violated_rules      Array(LowCardinality(String)),
    violation_policies  Array(String),
    policy_ids          Array(String),
    policy_versions     Array(UInt32),
    policy_modes        Array(LowCardinality(String)),
    pii_categories      Array(LowCardinality(String)),
    pii_paths           Array(String),
    operation_count     UInt16,
    operation_types     Array(LowCardinality(String)),
    models              Array(LowCardinality(String)),
    providers           Array(LowCardinality(String)),
    total_tokens        UInt64,
    external_calls      UInt16,
    unknown_operations  UInt16,
    shadow_blocked_by   Array(String),
    latency_ms          Float32,
    event               String CODEC(ZSTD(3)),
    kafka_topic         LowCardinality(String),
    kafka_partition     UInt32,
    kafka_offset        UInt64,
    ingested_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX request_id_idx request_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX event_id_idx event_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX kafka_offset_idx kafka_offset TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(decided_at)
ORDER BY (customer_id, decided_at, event_id)
TTL toDateTime(decided_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
