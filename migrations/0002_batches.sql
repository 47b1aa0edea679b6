-- 0002: batches, one planned unit of work: the items that share a set of
-- model files, their estimates, the manifest pods read, and the hash of the
-- batch-scoped upload token.

CREATE TABLE batches (
    id                        bigint      GENERATED ALWAYS AS IDENTITY,
    status                    text        NOT NULL DEFAULT 'planned',
    assets                    jsonb       NOT NULL DEFAULT '[]',
    item_count                integer     NOT NULL DEFAULT 0,
    payload_bytes             bigint      NOT NULL DEFAULT 0,
    estimated_payload_gb      numeric,
    estimated_setup_hours     numeric,
    estimated_run_hours       numeric,
    estimated_usd             numeric,
    estimated_usd_per_image   numeric,
    gpu_type                  text,
    budget_usd                numeric,
    manifest                  jsonb,
    upload_token_hash         text,
    last_error                text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    published_at              timestamptz,
    started_at                timestamptz,
    finished_at               timestamptz,
    updated_at                timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT batch_id_must_be_unique PRIMARY KEY (id),
    -- Only a hash is stored; it is unique so ingest can find the batch by it.
    CONSTRAINT upload_token_hash_must_be_unique UNIQUE (upload_token_hash),

    CONSTRAINT status_planned_publishing_queued_running_done_failed_cancelled
        CHECK (status IN ('planned', 'publishing', 'queued', 'running',
                          'done', 'failed', 'cancelled')),
    CONSTRAINT assets_is_a_json_array
        CHECK (jsonb_typeof(assets) = 'array'),
    CONSTRAINT item_count_is_not_negative
        CHECK (item_count >= 0),
    CONSTRAINT payload_bytes_is_not_negative
        CHECK (payload_bytes >= 0),
    CONSTRAINT estimated_payload_gb_is_not_negative
        CHECK (estimated_payload_gb >= 0),
    CONSTRAINT estimated_setup_hours_is_not_negative
        CHECK (estimated_setup_hours >= 0),
    CONSTRAINT estimated_run_hours_is_not_negative
        CHECK (estimated_run_hours >= 0),
    CONSTRAINT estimated_usd_is_not_negative
        CHECK (estimated_usd >= 0),
    CONSTRAINT estimated_usd_per_image_is_not_negative
        CHECK (estimated_usd_per_image >= 0),
    CONSTRAINT gpu_type_is_not_empty
        CHECK (btrim(gpu_type) <> ''),
    CONSTRAINT budget_usd_is_positive
        CHECK (budget_usd > 0),
    CONSTRAINT manifest_is_a_json_object
        CHECK (jsonb_typeof(manifest) = 'object'),
    CONSTRAINT upload_token_hash_is_64_lowercase_hex
        CHECK (upload_token_hash ~ '^[0-9a-f]{64}$'),
    -- Lifecycle timestamps: once the work is on the broker it was published;
    -- once the batch is over it has an end time.
    CONSTRAINT queued_running_or_done_batch_has_published_at
        CHECK (status NOT IN ('queued', 'running', 'done') OR published_at IS NOT NULL),
    CONSTRAINT done_failed_or_cancelled_batch_has_finished_at
        CHECK (status NOT IN ('done', 'failed', 'cancelled') OR finished_at IS NOT NULL)
);

COMMENT ON TABLE batches IS
    'A planned unit of work: items sharing model files, run by one or more pods. planned -> publishing -> queued -> running -> done | failed | cancelled.';
COMMENT ON COLUMN batches.status IS
    'planned (plan --apply wrote it), publishing (work messages being published), queued (all published: published_at set), running (a pod is generating), done | failed | cancelled (finished_at set).';
COMMENT ON COLUMN batches.assets IS
    'JSON array of asset file names (strings, each a registered asset, no duplicates) the batch needs, in download order.';
COMMENT ON COLUMN batches.item_count IS 'Number of queue items assigned to the batch.';
COMMENT ON COLUMN batches.payload_bytes IS 'Sum of assets.size_bytes over the batch''s assets: what each pod downloads.';
COMMENT ON COLUMN batches.estimated_payload_gb IS 'Planner estimate of the download size, GB.';
COMMENT ON COLUMN batches.estimated_setup_hours IS 'Planner estimate of pod setup time (bootstrap + downloads), hours.';
COMMENT ON COLUMN batches.estimated_run_hours IS 'Planner estimate of generation time, hours.';
COMMENT ON COLUMN batches.estimated_usd IS 'Planner estimate of total cost: GPU time plus volume storage, USD.';
COMMENT ON COLUMN batches.estimated_usd_per_image IS 'estimated_usd / item_count.';
COMMENT ON COLUMN batches.gpu_type IS 'GPU type the estimate assumes, e.g. "NVIDIA RTX A4000".';
COMMENT ON COLUMN batches.budget_usd IS 'Spending cap for the batch, USD; NULL means no cap.';
COMMENT ON COLUMN batches.manifest IS 'The manifest pods fetch: a JSON object (asset URLs, sizes, hashes, download and generation order).';
COMMENT ON COLUMN batches.upload_token_hash IS
    'SHA-256 (64 lowercase hex) of the batch-scoped upload token given to pods. The token itself is never stored.';
COMMENT ON COLUMN batches.last_error IS 'Why the batch failed or was cancelled, for operators.';
COMMENT ON COLUMN batches.started_at IS 'When the first pod of the batch started generating.';

CREATE INDEX batches_status_idx ON batches (status, created_at);

CREATE TRIGGER batches_touch_updated_at
    BEFORE UPDATE ON batches
    FOR EACH ROW EXECUTE FUNCTION spotq_touch_updated_at();

-- batches.assets names files; a plain constraint cannot look inside a JSON
-- array, so this trigger checks the shape and that each file is registered.
CREATE FUNCTION batches_check_assets() RETURNS trigger
LANGUAGE plpgsql
-- Resolve table names in the schema the migration ran in, whatever the
-- search_path of the session that fires the trigger.
SET search_path FROM CURRENT
AS $$
DECLARE
    entry jsonb;
    i     integer := 0;
    seen  text[] := '{}';
BEGIN
    IF NEW.assets IS NULL OR jsonb_typeof(NEW.assets) <> 'array' THEN
        RETURN NEW;  -- NOT NULL / assets_is_a_json_array report these
    END IF;
    FOR entry IN SELECT value FROM jsonb_array_elements(NEW.assets) LOOP
        IF jsonb_typeof(entry) <> 'string' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('assets[%s] must be a string (an asset file name), not %s',
                                 i, jsonb_typeof(entry)),
                DETAIL  = format('Got %s.', left(entry::text, 200)),
                HINT    = 'Write assets as a JSON array of file names, e.g. ["model.safetensors", "style.safetensors"].',
                TABLE   = TG_TABLE_NAME, COLUMN = 'assets', CONSTRAINT = 'assets_are_registered_file_names';
        END IF;
        IF (entry #>> '{}') = ANY (seen) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('assets[%s] "%s" is listed twice', i, entry #>> '{}'),
                DETAIL  = format('It is also assets[%s].', array_position(seen, entry #>> '{}') - 1),
                HINT    = 'List each asset once.',
                TABLE   = TG_TABLE_NAME, COLUMN = 'assets', CONSTRAINT = 'assets_are_registered_file_names';
        END IF;
        -- FOR KEY SHARE, like a foreign key: the asset cannot be deleted or
        -- renamed until this transaction ends.
        PERFORM 1 FROM assets a WHERE a.filename = entry #>> '{}' FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = format('unknown asset "%s"', entry #>> '{}'),
                DETAIL  = format('Entry assets[%s] names a file that is not in the assets table.', i),
                HINT    = 'Register it first: spotq assets import FILE',
                TABLE   = TG_TABLE_NAME, COLUMN = 'assets', CONSTRAINT = 'assets_are_registered_file_names';
        END IF;
        seen := seen || (entry #>> '{}');
        i := i + 1;
    END LOOP;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION batches_check_assets() IS
    'BEFORE INSERT/UPDATE OF assets on batches: assets must be a JSON array of distinct registered asset file names.';

CREATE TRIGGER batches_check_assets
    BEFORE INSERT OR UPDATE OF assets ON batches
    FOR EACH ROW EXECUTE FUNCTION batches_check_assets();
