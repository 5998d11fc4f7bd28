-- 0017: a SHA-256 verifier of each key beside its bcrypt hash, written once bcrypt accepted the key, so that a process that has not seen the key yet (a restart) accepts it without bcrypt; a row whose hash changes loses its verifier.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS key_verifier text;
ALTER TABLE admin_keys ADD COLUMN IF NOT EXISTS key_verifier text;
CREATE OR REPLACE FUNCTION governance_drop_stale_key_verifier() RETURNS trigger AS $$
BEGIN
    IF NEW.key_hash IS DISTINCT FROM OLD.key_hash THEN
        NEW.key_verifier := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS api_keys_stale_verifier ON api_keys;
CREATE TRIGGER api_keys_stale_verifier BEFORE UPDATE OF key_hash ON api_keys
    FOR EACH ROW EXECUTE FUNCTION governance_drop_stale_key_verifier();
DROP TRIGGER IF EXISTS admin_keys_stale_verifier ON admin_keys;
CREATE TRIGGER admin_keys_stale_verifier BEFORE UPDATE OF key_hash ON admin_keys
    FOR EACH ROW EXECUTE FUNCTION governance_drop_stale_key_verifier();
