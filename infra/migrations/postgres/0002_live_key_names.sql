-- 0002: a customer's live keys have distinct names (revoked and rotated-out keys free their name for reuse).
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (customer_id, lower(name))
    WHERE revoked_at IS NULL AND rotated_at IS NULL;
