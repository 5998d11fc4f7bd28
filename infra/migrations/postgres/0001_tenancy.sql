-- 0001: customers, their API keys and policies (with version history), and operators' admin keys.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE customers (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tier                    text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro')),
    rate_limit_capacity     integer CHECK (rate_limit_capacity > 0),
    rate_limit_window_s     integer CHECK (rate_limit_window_s > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
-- Names are unique among live customers; a deleted customer's name may be reused.
CREATE UNIQUE INDEX customers_live_name ON customers (lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_id          text NOT NULL UNIQUE,
    customer_id     uuid NOT NULL REFERENCES customers (id),
    key_hash        text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    replaces        uuid REFERENCES api_keys (id)
);
CREATE INDEX api_keys_customer ON api_keys (customer_id);

CREATE TABLE admin_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_id          text NOT NULL UNIQUE,
    key_hash        text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    last_used_at    timestamptz
);

CREATE TABLE policies (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    rules           jsonb NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    mode            text NOT NULL DEFAULT 'enforce' CHECK (mode IN ('enforce', 'shadow')),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX policies_live_name ON policies (customer_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX policies_customer_active ON policies (customer_id) WHERE deleted_at IS NULL;

CREATE TABLE policy_versions (
    policy_id       uuid NOT NULL REFERENCES policies (id),
    version         integer NOT NULL,
    name            text NOT NULL,
    rules           jsonb NOT NULL,
    active          boolean NOT NULL,
    mode            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy_id, version)
);

-- Every change to a key or a policy is announced, so each ingress process drops its cached copy at once.
CREATE FUNCTION notify_governance_change() RETURNS trigger AS $$
DECLARE
    row_json jsonb := to_jsonb(NEW);
BEGIN
    PERFORM pg_notify('governance_changes', json_build_object(
        'table', TG_TABLE_NAME,
        'key_id', row_json ->> 'key_id',
        'customer_id', CASE WHEN TG_TABLE_NAME = 'customers' THEN row_json ->> 'id'
                            ELSE row_json ->> 'customer_id' END,
        'id', row_json ->> 'id'
    )::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
CREATE TRIGGER admin_keys_changed AFTER INSERT OR UPDATE ON admin_keys
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
CREATE TRIGGER policies_changed AFTER INSERT OR UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
CREATE TRIGGER customers_changed AFTER INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
