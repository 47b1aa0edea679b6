-- 0019: what each pod's worker is doing, and when it last got anywhere.
--
-- A worker's heartbeat says it lives; measured against real ComfyUI, a worker
-- stuck polling a lost prompt went on beating for 30 minutes, and nothing
-- could tell it from a busy one. Its heartbeats now carry its activity, since
-- when, and its progress mark (SpotqCore's HeartbeatReport); the event
-- recorder keeps the last ones here, the provisioner replaces a pod whose
-- worker has made no progress for SPOTQ_POD_STALL_SECONDS, and `spotq pods`
-- and the dashboard show them. All NULL until a heartbeat reports them, and
-- again after a resume (the pod's new worker has said nothing yet).

ALTER TABLE pods
    ADD COLUMN activity           text,
    ADD COLUMN activity_since     timestamptz,
    ADD COLUMN progress_at        timestamptz,
    ADD COLUMN activity_item_id   bigint,
    ADD COLUMN activity_prompt_id text,
    ADD COLUMN activity_asset     text,
    ADD COLUMN activity_bytes     bigint;

ALTER TABLE pods
    -- WorkerActivity's cases.
    ADD CONSTRAINT activity_is_a_worker_activity
        CHECK (activity IN ('starting', 'waiting_for_work', 'downloading', 'waiting_for_asset',
                            'generating', 'uploading', 'draining')),
    ADD CONSTRAINT activity_comes_with_its_since_and_progress_times
        CHECK ((activity IS NULL) = (activity_since IS NULL) AND (activity IS NULL) = (progress_at IS NULL)),
    ADD CONSTRAINT activity_prompt_id_is_1_to_255_chars
        CHECK (char_length(activity_prompt_id) BETWEEN 1 AND 255),
    ADD CONSTRAINT activity_asset_is_1_to_255_chars
        CHECK (char_length(activity_asset) BETWEEN 1 AND 255),
    ADD CONSTRAINT activity_bytes_is_not_negative
        CHECK (activity_bytes >= 0);

COMMENT ON COLUMN pods.activity IS
    'What the worker''s last heartbeat said it was doing: starting, waiting_for_work, downloading, waiting_for_asset, generating, uploading, draining; NULL before its first such heartbeat.';
COMMENT ON COLUMN pods.activity_since IS 'When the worker entered its activity, on the recorder''s clock (a pod''s clock off by over a minute is corrected).';
COMMENT ON COLUMN pods.progress_at IS
    'The worker''s progress mark, on the recorder''s clock: the last time it moved forward (an item settled for good, a model ready, download bytes advancing), time spent waiting for work added. now() - progress_at past SPOTQ_POD_STALL_SECONDS: the provisioner replaces the pod.';
COMMENT ON COLUMN pods.activity_item_id IS 'The item generated or uploaded, as the heartbeat said (an item of the pod''s batch).';
COMMENT ON COLUMN pods.activity_prompt_id IS 'ComfyUI''s prompt id for the item being generated.';
COMMENT ON COLUMN pods.activity_asset IS 'The model file downloaded or waited for.';
COMMENT ON COLUMN pods.activity_bytes IS 'Bytes of activity_asset on the pod''s disk so far, while downloading.';

-- The event recorder writes them from heartbeats; the provisioner clears them
-- when it resumes a pod.
GRANT UPDATE (activity, activity_since, progress_at, activity_item_id, activity_prompt_id, activity_asset, activity_bytes)
    ON pods TO spotq_server, spotq_provisioner;
