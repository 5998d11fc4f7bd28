-- 0003: announce key changes only when a column the verifier reads changes, not on every last_used_at update.
DROP TRIGGER IF EXISTS api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed
    AFTER INSERT OR UPDATE OF key_hash, active, revoked_at, expires_at, customer_id ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
DROP TRIGGER IF EXISTS admin_keys_changed ON admin_keys;
CREATE TRIGGER admin_keys_changed
    AFTER INSERT OR UPDATE OF key_hash, active, revoked_at ON admin_keys
    FOR EACH ROW EXECUTE FUNCTION notify_governance_change();
