-- 0007: what the provisioner needs to run the fleet and account for it.
--
-- A pod's state comes from its own events (recorded by the server) and from
-- the provider's API (reconciled by the provisioner); costs accrue from the
-- provider's status: the GPU price while it runs, volume storage until it is
-- terminated.

ALTER TABLE pods
    ADD COLUMN provider_status   text,
    ADD COLUMN stop_requested_at timestamptz,
    ADD COLUMN resume_attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN accrued_until     timestamptz,
    ADD COLUMN name              text;

ALTER TABLE pods
    ADD CONSTRAINT provider_status_is_known
        CHECK (provider_status IN ('starting', 'running', 'exited', 'gone')),
    ADD CONSTRAINT resume_attempts_is_not_negative
        CHECK (resume_attempts >= 0);

COMMENT ON COLUMN pods.provider_status IS 'Last status the provider reported: starting (container not up), running, exited (stopped or reclaimed; volume kept), gone.';
COMMENT ON COLUMN pods.stop_requested_at IS 'When spotq stopped the pod itself to drain it (so its exit is not a reclaim).';
COMMENT ON COLUMN pods.resume_attempts IS 'Resumes tried since the pod was last reclaimed.';
COMMENT ON COLUMN pods.accrued_until IS 'accrued_usd covers the pod up to this time.';
COMMENT ON COLUMN pods.name IS 'The name spotq gave the pod at the provider.';

-- Things an operator must hear about: spot unavailable, on-demand fallback,
-- prices past the alert multiple, orphan pods.
CREATE TABLE fleet_alerts (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    kind        text        NOT NULL,
    message     text        NOT NULL,
    pod_id      bigint,
    raised_at   timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT fleet_alert_id_must_be_unique PRIMARY KEY (id),
    CONSTRAINT pod_id_must_be_an_existing_pod
        FOREIGN KEY (pod_id) REFERENCES pods (id) ON DELETE SET NULL,
    CONSTRAINT kind_is_a_lowercase_identifier
        CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    CONSTRAINT message_is_not_empty
        CHECK (btrim(message) <> '')
);

COMMENT ON TABLE fleet_alerts IS 'Alerts raised by the provisioner, newest last.';

CREATE INDEX fleet_alerts_raised_idx ON fleet_alerts (raised_at);
