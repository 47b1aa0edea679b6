-- 0008: every dead letter, kept in PostgreSQL.
--
-- The server's dead-letter recorder consumes spotq.dead and writes each message
-- here before acking it, so nothing that was refused is lost, capped or
-- forgotten. `spotq dlq` lists, shows, replays (to the message's origin, with a
-- publisher confirm) and purges them; a replay is recorded on the row.

CREATE TABLE dead_letters (
    id                  bigint      GENERATED ALWAYS AS IDENTITY,
    reason              text        NOT NULL,
    origin_exchange     text,
    origin_routing_key  text,
    origin_queue        text,
    death_count         integer     NOT NULL DEFAULT 1,
    dead_lettered_at    timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    message_id          text,
    content_type        text,
    properties          jsonb       NOT NULL DEFAULT '{}',
    headers             jsonb       NOT NULL DEFAULT '{}',
    body                bytea       NOT NULL,
    replayed_at         timestamptz,
    replay_count        integer     NOT NULL DEFAULT 0,
    purged_at           timestamptz,

    CONSTRAINT dead_letter_id_must_be_unique PRIMARY KEY (id),
    CONSTRAINT reason_is_not_empty CHECK (btrim(reason) <> ''),
    CONSTRAINT death_count_is_positive CHECK (death_count > 0),
    CONSTRAINT replay_count_is_not_negative CHECK (replay_count >= 0),
    CONSTRAINT replayed_dead_letter_has_replayed_at CHECK (replay_count = 0 OR replayed_at IS NOT NULL),
    CONSTRAINT headers_is_a_json_object CHECK (jsonb_typeof(headers) = 'object'),
    CONSTRAINT properties_is_a_json_object CHECK (jsonb_typeof(properties) = 'object')
);

COMMENT ON TABLE dead_letters IS 'Every message that reached spotq.dead, with why and where it came from; never capped.';
COMMENT ON COLUMN dead_letters.reason IS 'x-spotq-reason, or the broker''s x-death reason (delivery_limit, rejected, expired, maxlen).';
COMMENT ON COLUMN dead_letters.origin_exchange IS 'Where a replay publishes it: the exchange it was first published to.';
COMMENT ON COLUMN dead_letters.death_count IS 'Times the broker dead-lettered it from its queue (x-death count), else 1.';
COMMENT ON COLUMN dead_letters.properties IS 'The message''s AMQP properties (content_type, correlation_id, reply_to, message_id, type, app_id), kept for a replay.';
COMMENT ON COLUMN dead_letters.replayed_at IS 'Last replay (republished to its origin with a confirm).';
COMMENT ON COLUMN dead_letters.purged_at IS 'Purged by an operator: hidden from `spotq dlq list`, kept for the record.';

CREATE INDEX dead_letters_live_idx ON dead_letters (recorded_at) WHERE purged_at IS NULL;
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason) WHERE purged_at IS NULL;
