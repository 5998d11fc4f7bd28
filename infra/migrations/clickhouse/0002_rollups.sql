-- 0002: per-customer rollups per minute and per hour, filled by materialized views, so summaries never scan raw rows.
-- A block skipped by insert deduplication never reaches the views; the targets keep a dedup window of their own
-- so a retried insert (deduplicate_blocks_in_dependent_materialized_views = 1) is not counted twice either.
CREATE TABLE IF NOT EXISTS {db}.decisions_per_minute
(
    customer_id         UUID,
    bucket              DateTime('UTC'),
    decisions           SimpleAggregateFunction(sum, UInt64),
    allowed             SimpleAggregateFunction(sum, UInt64),
    blocked             SimpleAggregateFunction(sum, UInt64),
    risk_sum            SimpleAggregateFunction(sum, UInt64),
    risk_quantiles      AggregateFunction(quantiles(0.5, 0.95, 0.99), UInt8),
    latency_ms_sum      SimpleAggregateFunction(sum, Float64),
    with_personal_data  SimpleAggregateFunction(sum, UInt64),
    reasons             SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    violated_rules      SimpleAggregateFunction(sumMap, Map(String, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (customer_id, bucket)
TTL bucket + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.decisions_per_hour AS {db}.decisions_per_minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_per_minute_mv TO {db}.decisions_per_minute AS
SELECT
    d.customer_id AS customer_id,
    toStartOfMinute(d.decided_at) AS bucket,
    count() AS decisions,
    countIf(d.allowed) AS allowed,
    countIf(NOT d.allowed) AS blocked,
    sum(toUInt64(d.risk_score)) AS risk_sum,
    quantilesState(0.5, 0.95, 0.99)(d.risk_score) AS risk_quantiles,
    sum(toFloat64(d.latency_ms)) AS latency_ms_sum,
    countIf(notEmpty(d.pii_categories)) AS with_personal_data,
    sumMap(map(d.reason, toUInt64(1))) AS reasons,
    sumMap(mapFromArrays(arrayDistinct(d.violated_rules),
                         arrayMap(r -> toUInt64(1), arrayDistinct(d.violated_rules)))) AS violated_rules
FROM {db}.decisions AS d
GROUP BY customer_id, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_per_hour_mv TO {db}.decisions_per_hour AS
SELECT
    d.customer_id AS customer_id,
    toStartOfHour(d.decided_at) AS bucket,
    count() AS decisions,
    countIf(d.allowed) AS allowed,
    countIf(NOT d.allowed) AS blocked,
    sum(toUInt64(d.risk_score)) AS risk_sum,
    quantilesState(0.5, 0.95, 0.99)(d.risk_score) AS risk_quantiles,
    sum(toFloat64(d.latency_ms)) AS latency_ms_sum,
    countIf(notEmpty(d.pii_categories)) AS with_personal_data,
    sumMap(map(d.reason, toUInt64(1))) AS reasons,
    sumMap(mapFromArrays(arrayDistinct(d.violated_rules),
                         arrayMap(r -> toUInt64(1), arrayDistinct(d.violated_rules)))) AS violated_rules
FROM {db}.decisions AS d
GROUP BY customer_id, bucket;
