-- 0001: the audit log of decisions, one row per DecisionEvent, deduplicated on event_id.
CREATE TABLE IF NOT EXISTS {db}.decisions
(
    event_id          UUID,
    request_id        String,
    customer_id       UUID,
    key_id            String,
    decided_at        DateTime64(3, 'UTC'),
    allowed           Bool,
    decision          LowCardinality(String),
    risk_score        UInt8,
    threshold         UInt8,
    reason            String,
    factor_names      Array(LowCardinality(String)),
    violated_rules    Array(LowCardinality(String)),
    pii_categories    Array(LowCardinality(String)),
    pii_paths         Array(String),
    operation_types   Array(LowCardinality(String)),
    models            Array(String),
    total_tokens      UInt64,
    external_calls    UInt16,
    policy_versions   Array(String),
    latency_ms        Float32,
    event             String,
    kafka_topic       LowCardinality(String),
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(decided_at)
ORDER BY (customer_id, decided_at, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
