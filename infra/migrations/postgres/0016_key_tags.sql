-- 0016: a 32-bit tag of each key beside its bcrypt hash, so a wrong secret is refused without bcrypt (written at a key's first accepted use; the hash stays the verifier).
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS key_tag text;
ALTER TABLE admin_keys ADD COLUMN IF NOT EXISTS key_tag text;
