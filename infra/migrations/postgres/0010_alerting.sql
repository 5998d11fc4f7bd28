-- 0010: alerting: alert rules per customer (or fleet-wide), alerts and their events (outbox to Kafka), webhook endpoints, deliveries (outbox to HTTP) and every attempt.

-- One rule per (scope, kind): a customer's own, or the fleet's (customer_id NULL). No row = the built-in default.
CREATE TABLE alert_rules (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid REFERENCES customers (id),
    kind            text NOT NULL CHECK (kind IN ('block_rate', 'high_risk', 'personal_data', 'volume_spike',
                                                  'rate_limited', 'auth_failures')),
    enabled         boolean NOT NULL DEFAULT true,
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_rules_customer_kind ON alert_rules (customer_id, kind) WHERE customer_id IS NOT NULL;
CREATE UNIQUE INDEX alert_rules_fleet_kind ON alert_rules (kind) WHERE customer_id IS NULL;

-- An alert per (rule, subject) episode; at most one open at a time, whoever opens it.
CREATE TABLE alerts (
    id                  uuid PRIMARY KEY,
    rule                text NOT NULL,
    customer_id         uuid,                       -- NULL for the 'unknown' subject
    subject             text NOT NULL,              -- customer id as text, or 'unknown'
    status              text NOT NULL CHECK (status IN ('open', 'resolved')),
    severity            text NOT NULL,
    summary             text NOT NULL,
    value               double precision NOT NULL,
    threshold           double precision NOT NULL,
    params              jsonb NOT NULL,
    sequence            integer NOT NULL DEFAULT 1, -- sequence of the alert's last event
    opened_at           timestamptz NOT NULL,
    last_notified_at    timestamptz NOT NULL,
    resolved_at         timestamptz,
    source_topic        text NOT NULL,              -- the partition whose consumer owns the alert's state
    source_partition    integer NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, subject) WHERE status = 'open';
CREATE INDEX alerts_customer_opened ON alerts (customer_id, opened_at DESC);
CREATE INDEX alerts_open_by_partition ON alerts (source_topic, source_partition) WHERE status = 'open';

-- Each state change once: (alert, sequence) is unique, so reprocessing cannot notify twice.
CREATE TABLE alert_events (
    event_id        uuid PRIMARY KEY,
    alert_id        uuid NOT NULL REFERENCES alerts (id),
    transition      text NOT NULL CHECK (transition IN ('opened', 'renotified', 'resolved')),
    sequence        integer NOT NULL CHECK (sequence >= 1),
    subject         text NOT NULL,
    payload         jsonb NOT NULL,             -- the AlertEvent v1, as published and delivered
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,                -- on Kafka; NULL = still to publish
    UNIQUE (alert_id, sequence),
    UNIQUE (alert_id, transition, sequence)
);
CREATE INDEX alert_events_unpublished ON alert_events (created_at) WHERE published_at IS NULL;

-- The signing secret is kept as given: an HMAC needs it, so it cannot be hashed. It is returned once, at creation.
CREATE TABLE webhooks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid REFERENCES customers (id),   -- NULL: an operator endpoint receiving every alert
    url             text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    secret          text NOT NULL,
    description     text NOT NULL DEFAULT '',
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX webhooks_customer ON webhooks (customer_id) WHERE deleted_at IS NULL;

-- The delivery outbox: one row per (event, endpoint), claimed by workers with FOR UPDATE SKIP LOCKED.
CREATE TABLE webhook_deliveries (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id          uuid NOT NULL REFERENCES webhooks (id),
    event_id            uuid NOT NULL REFERENCES alert_events (event_id),
    alert_id            uuid NOT NULL,
    transition          text NOT NULL,
    sequence            integer NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz DEFAULT now(),  -- NULL once settled
    last_status_code    integer,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    delivered_at        timestamptz,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries (webhook_id, alert_id, sequence) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id         uuid NOT NULL REFERENCES webhook_deliveries (id),
    attempt             integer NOT NULL,
    webhook_id          uuid NOT NULL,
    started_at          timestamptz NOT NULL,
    duration_ms         double precision NOT NULL,
    status_code         integer,
    error               text,
    outcome             text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
    next_attempt_at     timestamptz,
    PRIMARY KEY (delivery_id, attempt)
);
