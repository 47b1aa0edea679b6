-- 0009: what the fleet cost per day (UTC), as the provisioner accrues it, so
-- `spotq status` can say what today cost.

CREATE TABLE fleet_cost_days (
    day   date    NOT NULL,
    usd   numeric NOT NULL DEFAULT 0,

    CONSTRAINT fleet_cost_day_must_be_unique PRIMARY KEY (day),
    CONSTRAINT usd_is_not_negative CHECK (usd >= 0)
);

COMMENT ON TABLE fleet_cost_days IS 'USD accrued by all pods per UTC day (GPU time and storage).';
