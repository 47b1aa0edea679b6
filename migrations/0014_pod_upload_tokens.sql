-- 0014: an upload token per pod.
--
-- The provisioner mints a random token for each rental and stores only its
-- SHA-256 here. It is valid for the pod's batch while the pod lives (a
-- reclaimed and resumed pod keeps it) and refused once the pod is terminated.
-- It does not derive from SPOTQ_SECRET, so rotating the secret locks no pod out.

ALTER TABLE pods ADD COLUMN upload_token_hash text;
ALTER TABLE pods ADD CONSTRAINT pod_upload_token_hash_must_be_unique UNIQUE (upload_token_hash);
ALTER TABLE pods ADD CONSTRAINT pod_upload_token_hash_is_64_hex_digits CHECK (upload_token_hash ~ '^[0-9a-f]{64}$');
COMMENT ON COLUMN pods.upload_token_hash IS 'SHA-256 (hex) of the pod''s own upload token; the token itself is only in the pod''s environment.';
