-- 0005: pods and pod_events, the fleet and what happened to it. These feed
-- the interruption rate, setup time and cost-per-image figures.

CREATE TABLE pods (
    id                        bigint      GENERATED ALWAYS AS IDENTITY,
    batch_id                  bigint,
    provider                  text        NOT NULL,
    provider_pod_id           text,
    gpu_type                  text        NOT NULL,
    gpu_count                 integer     NOT NULL DEFAULT 1,
    interruptible             boolean     NOT NULL,
    bid_usd_per_gpu_hour      numeric,
    price_usd_per_hour        numeric,
    volume_gb                 integer,
    container_disk_gb         integer,
    storage_usd_per_gb_month  numeric,
    state                     text        NOT NULL DEFAULT 'requested',
    requested_at              timestamptz NOT NULL DEFAULT now(),
    started_at                timestamptz,
    first_image_at            timestamptz,
    terminated_at             timestamptz,
    last_seen_at              timestamptz,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    accrued_usd               numeric     NOT NULL DEFAULT 0,
    interruptions             integer     NOT NULL DEFAULT 0,
    last_error                text,

    CONSTRAINT pod_id_must_be_unique PRIMARY KEY (id),
    -- NULLs are distinct: a pod not yet acknowledged by its provider has
    -- no provider id.
    CONSTRAINT provider_pod_id_must_be_unique_per_provider
        UNIQUE (provider, provider_pod_id),
    -- A pod may be rented before it is assigned, or outlive its batch.
    CONSTRAINT batch_id_must_be_an_existing_batch
        FOREIGN KEY (batch_id) REFERENCES batches (id)
        ON UPDATE RESTRICT ON DELETE RESTRICT,

    -- Not a fixed list: new providers need no migration.
    CONSTRAINT provider_is_a_lowercase_identifier
        CHECK (provider ~ '^[a-z][a-z0-9_-]{0,62}$'),
    CONSTRAINT provider_pod_id_is_1_to_200_chars
        CHECK (char_length(provider_pod_id) BETWEEN 1 AND 200),
    CONSTRAINT gpu_type_is_not_empty
        CHECK (btrim(gpu_type) <> ''),
    CONSTRAINT gpu_count_is_positive
        CHECK (gpu_count > 0),
    -- The spot market needs a bid; on-demand pods pay the list price.
    CONSTRAINT spot_pod_has_a_bid
        CHECK (NOT interruptible OR bid_usd_per_gpu_hour IS NOT NULL),
    CONSTRAINT bid_usd_per_gpu_hour_is_positive
        CHECK (bid_usd_per_gpu_hour > 0),
    CONSTRAINT price_usd_per_hour_is_not_negative
        CHECK (price_usd_per_hour >= 0),
    CONSTRAINT volume_gb_is_not_negative
        CHECK (volume_gb >= 0),
    CONSTRAINT container_disk_gb_is_not_negative
        CHECK (container_disk_gb >= 0),
    CONSTRAINT storage_usd_per_gb_month_is_not_negative
        CHECK (storage_usd_per_gb_month >= 0),
    CONSTRAINT state_is_a_pod_lifecycle_state
        CHECK (state IN ('requested', 'starting', 'gpu_failed', 'downloading',
                         'generating', 'draining', 'reclaimed', 'terminated')),
    CONSTRAINT terminated_pod_has_terminated_at
        CHECK (state <> 'terminated' OR terminated_at IS NOT NULL),
    CONSTRAINT accrued_usd_is_not_negative
        CHECK (accrued_usd >= 0),
    CONSTRAINT interruptions_is_not_negative
        CHECK (interruptions >= 0)
);

COMMENT ON TABLE pods IS
    'Every pod spotq rented (or tried to), spot or on-demand, with its lifecycle and cost.';
COMMENT ON COLUMN pods.batch_id IS 'The batch the pod works for; NULL before assignment.';
COMMENT ON COLUMN pods.provider IS 'Cloud provider, a lowercase identifier: ''runpod'', ''devcloud'', ...';
COMMENT ON COLUMN pods.provider_pod_id IS 'The provider''s id for the pod; NULL until the provider answers. Unique per provider.';
COMMENT ON COLUMN pods.gpu_type IS 'GPU type as the provider names it, e.g. "NVIDIA RTX A4000".';
COMMENT ON COLUMN pods.interruptible IS 'true: spot (may be reclaimed, bid required); false: on-demand.';
COMMENT ON COLUMN pods.bid_usd_per_gpu_hour IS 'Spot bid per GPU per hour, USD; required when interruptible.';
COMMENT ON COLUMN pods.price_usd_per_hour IS 'What the pod actually costs per hour (all GPUs), USD, as the provider reports it.';
COMMENT ON COLUMN pods.volume_gb IS 'Persistent volume (/workspace): batch payload + 11 GB by default.';
COMMENT ON COLUMN pods.container_disk_gb IS 'Container disk, GB (1 by default).';
COMMENT ON COLUMN pods.storage_usd_per_gb_month IS 'Volume storage price, USD per GB per month; it accrues even while the pod is stopped.';
COMMENT ON COLUMN pods.state IS
    'requested -> starting -> downloading -> generating -> draining -> terminated; gpu_failed (GPU check failed, the pod terminates itself); reclaimed (spot capacity taken back: resume or replace).';
COMMENT ON COLUMN pods.first_image_at IS 'When the first image was done: started_at..first_image_at is the setup time.';
COMMENT ON COLUMN pods.last_seen_at IS 'Last heartbeat or provider status seen for the pod.';
COMMENT ON COLUMN pods.accrued_usd IS 'Cost accrued so far (GPU time and storage), USD.';
COMMENT ON COLUMN pods.interruptions IS 'Times the pod was reclaimed.';

-- Provisioner and reconciler: the live fleet.
CREATE INDEX pods_live_idx ON pods (provider, state) WHERE state <> 'terminated';
CREATE INDEX pods_batch_idx ON pods (batch_id) WHERE batch_id IS NOT NULL;

CREATE TRIGGER pods_touch_updated_at
    BEFORE UPDATE ON pods
    FOR EACH ROW EXECUTE FUNCTION spotq_touch_updated_at();

CREATE TABLE pod_events (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    pod_id           bigint,
    provider         text,
    provider_pod_id  text,
    batch_id         bigint,
    event_key        text,
    kind             text        NOT NULL,
    state            text,
    detail           jsonb       NOT NULL DEFAULT '{}',
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT pod_event_id_must_be_unique PRIMARY KEY (id),
    -- Events arrive at least once from the broker; a sender's key makes the
    -- second copy a no-op: INSERT ... ON CONFLICT (event_key) DO NOTHING.
    CONSTRAINT event_key_must_be_unique UNIQUE (event_key),
    CONSTRAINT pod_id_must_be_an_existing_pod
        FOREIGN KEY (pod_id) REFERENCES pods (id)
        ON UPDATE RESTRICT ON DELETE CASCADE,
    CONSTRAINT batch_id_must_be_an_existing_batch
        FOREIGN KEY (batch_id) REFERENCES batches (id)
        ON UPDATE RESTRICT ON DELETE RESTRICT,

    -- An event may arrive before spotq knows the pod (pod_id NULL); it must
    -- still say which pod it is about.
    CONSTRAINT event_names_its_pod
        CHECK (pod_id IS NOT NULL OR (provider IS NOT NULL AND provider_pod_id IS NOT NULL)),
    CONSTRAINT provider_is_a_lowercase_identifier
        CHECK (provider ~ '^[a-z][a-z0-9_-]{0,62}$'),
    CONSTRAINT provider_pod_id_is_1_to_200_chars
        CHECK (char_length(provider_pod_id) BETWEEN 1 AND 200),
    CONSTRAINT event_key_is_1_to_200_chars
        CHECK (char_length(event_key) BETWEEN 1 AND 200),
    CONSTRAINT kind_is_a_lowercase_dotted_identifier
        CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' AND char_length(kind) <= 100),
    CONSTRAINT state_is_a_pod_lifecycle_state
        CHECK (state IN ('requested', 'starting', 'gpu_failed', 'downloading',
                         'generating', 'draining', 'reclaimed', 'terminated')),
    CONSTRAINT state_event_has_a_state
        CHECK (kind <> 'state' OR state IS NOT NULL),
    CONSTRAINT detail_is_a_json_object
        CHECK (jsonb_typeof(detail) = 'object')
);

COMMENT ON TABLE pod_events IS
    'What pods reported or spotq observed, append-only: state changes, asset.ready, image.done, errors, termination notices.';
COMMENT ON COLUMN pod_events.pod_id IS 'The pod; NULL when the event arrived before spotq knew the pod (then provider and provider_pod_id say which).';
COMMENT ON COLUMN pod_events.event_key IS 'Sender''s unique key for the event, so a redelivered event is recorded once; NULL if the sender has none.';
COMMENT ON COLUMN pod_events.kind IS 'Lowercase dotted identifier: ''state'', ''asset.ready'', ''image.done'', ''error'', ''termination.notice'', ...';
COMMENT ON COLUMN pod_events.state IS 'The pod''s new state, for kind ''state'' (required there); same values as pods.state.';
COMMENT ON COLUMN pod_events.detail IS 'Event details as a JSON object (asset name, item id, error text, ...).';
COMMENT ON COLUMN pod_events.occurred_at IS 'When it happened, by the reporter''s clock.';
COMMENT ON COLUMN pod_events.recorded_at IS 'When spotq stored it, by the database''s clock.';

CREATE INDEX pod_events_pod_idx ON pod_events (pod_id, occurred_at);
CREATE INDEX pod_events_batch_idx ON pod_events (batch_id, occurred_at) WHERE batch_id IS NOT NULL;
-- Fleet figures over time: interruptions (state reclaimed), errors, ...
CREATE INDEX pod_events_kind_idx ON pod_events (kind, occurred_at);
-- Events that arrived before their pod was known, to link them later.
CREATE INDEX pod_events_unlinked_idx ON pod_events (provider, provider_pod_id, occurred_at)
    WHERE pod_id IS NULL;
