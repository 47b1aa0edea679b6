-- 0016: the public keys that signed each batch's work.
--
-- The planner signs every work message (Ed25519, its key derived from
-- SPOTQ_SECRET) and records the public key on the batch when it plans it, and
-- again before publishing (should the secret have changed in between); the
-- provisioner gives a pod the keys of its own batch. Rotating SPOTQ_SECRET
-- then locks no pod out: work already in a queue stays verifiable with the key
-- that signed it, and a batch whose publishing was cut short and resumed after
-- a rotation lists both keys. The provisioner no longer needs SPOTQ_SECRET.

ALTER TABLE batches ADD COLUMN work_public_keys text[] NOT NULL DEFAULT '{}';
ALTER TABLE batches ADD CONSTRAINT batch_work_public_keys_are_few CHECK (cardinality(work_public_keys) <= 16);
COMMENT ON COLUMN batches.work_public_keys IS 'Base64 Ed25519 public keys that signed this batch''s work messages (not secret); pods verify with these.';

GRANT UPDATE (work_public_keys) ON batches TO spotq_server;
GRANT SELECT (id, work_public_keys) ON batches TO spotq_provisioner;
