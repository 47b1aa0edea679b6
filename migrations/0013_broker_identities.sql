-- 0013: who the broker says sent things.
--
-- Every pod gets its own RabbitMQ user, made before the rental and deleted at
-- termination; the row is written before the provider is asked, so the user's
-- name (spotq-pod-<id>) exists first. Dead letters keep the validated user_id
-- they arrived with, so a pod's dead letter is replayed only into its batch.

ALTER TABLE pods ADD COLUMN broker_user text;
ALTER TABLE pods ADD CONSTRAINT broker_user_must_be_unique UNIQUE (broker_user);
ALTER TABLE pods ADD CONSTRAINT broker_user_is_1_to_200_chars CHECK (char_length(broker_user) BETWEEN 1 AND 200);
COMMENT ON COLUMN pods.broker_user IS 'The pod''s own RabbitMQ user (spotq-pod-<id>), deleted when it is terminated; NULL when pods share one login.';

ALTER TABLE dead_letters ADD COLUMN dead_lettered_by text;
COMMENT ON COLUMN dead_letters.dead_lettered_by IS 'The validated user_id the dead letter arrived with: who dead-lettered it (the broker keeps the first publisher''s).';
