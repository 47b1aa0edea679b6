-- 0010: queue depths over time, for the dashboard's plot. The server's demand
-- publisher writes one row per batch queue (and one for all work) with every
-- snapshot and drops rows older than seven days.

CREATE TABLE queue_samples (
    taken_at        timestamptz NOT NULL,
    queue           text        NOT NULL,
    ready           integer     NOT NULL,
    unacknowledged  integer     NOT NULL,

    CONSTRAINT queue_sample_must_be_unique PRIMARY KEY (queue, taken_at),
    CONSTRAINT counts_are_not_negative CHECK (ready >= 0 AND unacknowledged >= 0)
);

COMMENT ON TABLE queue_samples IS 'Ready and unacknowledged work messages per batch queue (queue ''all'': every batch) over time; kept 7 days.';

CREATE INDEX queue_samples_taken_idx ON queue_samples (taken_at);
