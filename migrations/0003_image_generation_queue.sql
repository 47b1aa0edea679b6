-- 0003: image_generation_queue, one row per requested image.
--
-- The website inserts rows (SQL or via spotq.enqueue); spotq moves them
-- pending -> planned -> queued -> running -> done | failed | dead.
-- Bad rows are rejected at the door: named CHECK constraints for plain
-- columns, and a BEFORE trigger for what a CHECK cannot explain well (JSON
-- shapes, asset lookups), raising SQLSTATE 23514 (check_violation) for a
-- bad shape and 23503 (foreign_key_violation) for an unknown asset. Every
-- trigger error also sets the TABLE, COLUMN and CONSTRAINT error fields, so
-- clients can tell rules apart without parsing the message.

CREATE TABLE image_generation_queue (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    request_id       text        NOT NULL,
    checkpoint       text        NOT NULL,
    checkpoint_kind  text        NOT NULL DEFAULT 'checkpoint',
    loras            jsonb       NOT NULL DEFAULT '[]',
    prompt           jsonb       NOT NULL,
    workflow         jsonb       NOT NULL,
    priority         integer     NOT NULL DEFAULT 0,
    status           text        NOT NULL DEFAULT 'pending',
    batch_id         bigint,
    attempts         integer     NOT NULL DEFAULT 0,
    interruptions    integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    planned_at       timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,

    CONSTRAINT queue_item_id_must_be_unique PRIMARY KEY (id),
    -- The website's idempotency key: re-sending a request is a no-op with
    -- INSERT ... ON CONFLICT (request_id) DO NOTHING.
    CONSTRAINT request_id_must_be_unique UNIQUE (request_id),

    -- Composite foreign key: (checkpoint, 'checkpoint') must be a row of
    -- assets, so the key also enforces the asset's kind. The trigger below
    -- gives the friendly message first; this is the guarantee (it also
    -- keeps a used checkpoint from being deleted, renamed or re-kinded).
    CONSTRAINT checkpoint_must_be_a_registered_checkpoint
        FOREIGN KEY (checkpoint, checkpoint_kind)
        REFERENCES assets (filename, kind)
        ON UPDATE RESTRICT ON DELETE RESTRICT,
    CONSTRAINT batch_id_must_be_an_existing_batch
        FOREIGN KEY (batch_id) REFERENCES batches (id)
        ON UPDATE RESTRICT ON DELETE RESTRICT,

    CONSTRAINT request_id_is_1_to_200_chars
        CHECK (char_length(request_id) BETWEEN 1 AND 200),
    CONSTRAINT request_id_has_no_control_characters
        CHECK (request_id !~ '[[:cntrl:]]'),
    CONSTRAINT checkpoint_kind_is_checkpoint
        CHECK (checkpoint_kind = 'checkpoint'),
    -- Backstops for the trigger (which explains the details).
    CONSTRAINT loras_is_a_json_array
        CHECK (jsonb_typeof(loras) = 'array'),
    CONSTRAINT prompt_is_a_json_object
        CHECK (jsonb_typeof(prompt) = 'object'),
    CONSTRAINT workflow_is_a_json_object
        CHECK (jsonb_typeof(workflow) = 'object'),
    CONSTRAINT priority_between_minus_1000_and_1000
        CHECK (priority BETWEEN -1000 AND 1000),
    CONSTRAINT status_is_pending_planned_queued_running_done_failed_or_dead
        CHECK (status IN ('pending', 'planned', 'queued', 'running', 'done', 'failed', 'dead')),
    CONSTRAINT attempts_is_not_negative
        CHECK (attempts >= 0),
    CONSTRAINT interruptions_is_not_negative
        CHECK (interruptions >= 0),
    -- Status and batch agree: a pending item is in no batch yet; from
    -- planned on it belongs to one. failed/dead items may or may not.
    CONSTRAINT pending_item_has_no_batch
        CHECK (status <> 'pending' OR batch_id IS NULL),
    CONSTRAINT planned_queued_running_or_done_item_has_a_batch
        CHECK (status NOT IN ('planned', 'queued', 'running', 'done') OR batch_id IS NOT NULL),
    CONSTRAINT done_item_has_finished_at
        CHECK (status <> 'done' OR finished_at IS NOT NULL)
);

COMMENT ON TABLE image_generation_queue IS
    'One row per requested image. The website inserts it as pending (INSERT ... ON CONFLICT (request_id) DO NOTHING); spotq moves it pending -> planned -> queued -> running -> done | failed | dead. Inserting pending rows NOTIFYs channel spotq_pending.';
COMMENT ON COLUMN image_generation_queue.request_id IS
    'The website''s idempotency key, 1..200 characters, unique.';
COMMENT ON COLUMN image_generation_queue.checkpoint IS
    'File name of a registered asset of kind checkpoint; the workflow''s checkpoint loaders must load exactly this file.';
COMMENT ON COLUMN image_generation_queue.checkpoint_kind IS
    'Always ''checkpoint''. Exists only so the foreign key (checkpoint, checkpoint_kind) -> assets (filename, kind) enforces the kind; never set it.';
COMMENT ON COLUMN image_generation_queue.loras IS
    'JSON array (at most 16) of {"file": "<registered lora file name>", "strength": <number -10..10>}, no other keys, each file once. [] for none. Every LoRA the workflow loads must be listed.';
COMMENT ON COLUMN image_generation_queue.prompt IS
    'JSON object describing the image: "positive" (non-empty string) is required; optional, type-checked when present and not null: "negative", "sampler_name", "scheduler" (strings), "seed" (0..18446744073709551615), "width", "height" (16..16384), "steps" (1..10000) (whole numbers), "cfg" (number 0..100). Other keys are kept as they are.';
COMMENT ON COLUMN image_generation_queue.workflow IS
    'ComfyUI workflow in API format: a non-empty JSON object of nodes keyed by node id, each {"class_type": "<string>", "inputs": {...}}; a link input is ["<node id in this workflow>", <output index>].';
COMMENT ON COLUMN image_generation_queue.priority IS
    'Higher runs first; -1000..1000, default 0.';
COMMENT ON COLUMN image_generation_queue.status IS
    'pending (not in a batch), planned (in a batch), queued (published to the batch queue), running (a pod took it), done (image stored), failed (gave up with last_error), dead (dead-lettered after too many attempts).';
COMMENT ON COLUMN image_generation_queue.batch_id IS
    'The batch the item is planned into; NULL while pending.';
COMMENT ON COLUMN image_generation_queue.attempts IS
    'Failed attempts (errors from the item itself); these count toward dead-lettering.';
COMMENT ON COLUMN image_generation_queue.interruptions IS
    'Times the item''s pod was reclaimed or killed while it was running; never counted as failures.';
COMMENT ON COLUMN image_generation_queue.last_error IS
    'The most recent failure reason, for operators and the dead-letter list.';

-- Planner: pending demand per checkpoint, then items by priority (higher
-- first) and age.
CREATE INDEX image_generation_queue_pending_idx
    ON image_generation_queue (checkpoint, priority DESC, created_at, id)
    WHERE status = 'pending';
-- Batches: the items of a batch, and their progress.
CREATE INDEX image_generation_queue_batch_idx
    ON image_generation_queue (batch_id, status)
    WHERE batch_id IS NOT NULL;
-- Ops: items by status, most recently changed (stuck running, new dead ...).
CREATE INDEX image_generation_queue_status_idx
    ON image_generation_queue (status, updated_at);

CREATE TRIGGER image_generation_queue_touch_updated_at
    BEFORE UPDATE ON image_generation_queue
    FOR EACH ROW EXECUTE FUNCTION spotq_touch_updated_at();

-- Row validation with messages a person can act on. NULLs are skipped so
-- the NOT NULL constraint names the missing column itself.
CREATE FUNCTION image_generation_queue_check_row() RETURNS trigger
LANGUAGE plpgsql
-- Resolve table names in the schema the migration ran in, whatever the
-- search_path of the session that fires the trigger.
SET search_path FROM CURRENT
AS $$
DECLARE
    asset_kind text;
    entry      jsonb;
    pos        integer;
    file       text;
    files      text[] := '{}';
    k          text;
    v          jsonb;
    lo         numeric;
    hi         numeric;
    whole      boolean;
    node_id    text;
    node       jsonb;
    input_name text;
    problem    integer;
    class_name text;
    loaded     text;
    lora_example constant text := '[{"file": "style.safetensors", "strength": 0.8}]';
    api_hint     constant text := 'Export the workflow from ComfyUI with "Export (API)" (older versions: enable Dev mode, then "Save (API Format)").';
BEGIN
    -- New items start pending: the website asks, spotq decides the rest.
    IF TG_OP = 'INSERT' AND NEW.status <> 'pending' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = format('a new queue item must be pending, not "%s"', NEW.status),
            HINT    = 'Leave status out (it defaults to pending); spotq moves items through planned, queued, running and done.',
            TABLE = TG_TABLE_NAME, COLUMN = 'status', CONSTRAINT = 'new_item_is_pending';
    END IF;

    -- checkpoint: a registered asset of kind checkpoint.
    IF NEW.checkpoint IS NOT NULL THEN
        SELECT a.kind INTO asset_kind FROM assets a WHERE a.filename = NEW.checkpoint;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = format('unknown checkpoint "%s"', NEW.checkpoint),
                DETAIL  = 'The checkpoint column names a file that is not in the assets table.',
                HINT    = 'Register it first: spotq assets import FILE',
                TABLE = TG_TABLE_NAME, COLUMN = 'checkpoint', CONSTRAINT = 'checkpoint_must_be_a_registered_checkpoint';
        ELSIF asset_kind <> 'checkpoint' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = format('"%s" is a %s, not a checkpoint', NEW.checkpoint, asset_kind),
                DETAIL  = 'The checkpoint column must name an asset of kind checkpoint.',
                HINT    = format('List LoRAs in the loras column, e.g. [{"file": "%s", "strength": 1.0}].', NEW.checkpoint),
                TABLE = TG_TABLE_NAME, COLUMN = 'checkpoint', CONSTRAINT = 'checkpoint_must_be_a_registered_checkpoint';
        END IF;
    END IF;

    -- loras: [{"file": "<lora>", "strength": <number>}, ...]
    IF NEW.loras IS NOT NULL THEN
        IF jsonb_typeof(NEW.loras) <> 'array' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('loras must be a JSON array, not %s', jsonb_typeof(NEW.loras)),
                HINT    = 'Use [] for no LoRAs, or ' || lora_example || '.',
                TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
        END IF;
        IF jsonb_array_length(NEW.loras) > 16 THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('loras has %s entries; at most 16 are allowed', jsonb_array_length(NEW.loras)),
                TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
        END IF;
        -- Plain expressions rather than queries wherever possible: this runs
        -- for every row of a bulk insert.
        FOR pos IN 0 .. jsonb_array_length(NEW.loras) - 1 LOOP
            entry := NEW.loras -> pos;
            IF jsonb_typeof(entry) <> 'object' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s] must be an object, not %s', pos, jsonb_typeof(entry)),
                    HINT    = 'Each entry is {"file": "name.safetensors", "strength": 0.8}.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF entry - 'file' - 'strength' <> '{}' THEN
                SELECT min(key) INTO k FROM jsonb_object_keys(entry - 'file' - 'strength') AS key;
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s] has unknown key "%s"', pos, k),
                    HINT    = 'Each entry is {"file": "name.safetensors", "strength": 0.8}, with no other keys.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF NOT entry ? 'file' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].file is missing', pos),
                    HINT    = 'Each entry is {"file": "name.safetensors", "strength": 0.8}.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF jsonb_typeof(entry -> 'file') <> 'string' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].file must be a string, not %s', pos, jsonb_typeof(entry -> 'file')),
                    HINT    = 'Use the LoRA''s registered file name, e.g. "file": "style.safetensors".',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF NOT entry ? 'strength' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].strength is missing', pos),
                    HINT    = 'Each entry is {"file": "name.safetensors", "strength": 0.8}; 1.0 is full strength.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF jsonb_typeof(entry -> 'strength') <> 'number' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].strength must be a number, not %s', pos, jsonb_typeof(entry -> 'strength')),
                    DETAIL  = format('Got %s.', left((entry -> 'strength')::text, 100)),
                    HINT    = 'Write the number without quotes, e.g. "strength": 0.8.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            IF (entry ->> 'strength')::numeric NOT BETWEEN -10 AND 10 THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].strength must be between -10 and 10, not %s', pos, entry ->> 'strength'),
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            file := entry ->> 'file';
            IF file = ANY (files) THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('loras[%s].file "%s" is listed twice', pos, file),
                    DETAIL  = format('It is also loras[%s].file.', array_position(files, file) - 1),
                    HINT    = 'List each LoRA once, with the strength you want.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_are_file_strength_objects';
            END IF;
            -- FOR KEY SHARE, as a foreign key would: the LoRA cannot be
            -- deleted or renamed before this transaction ends.
            SELECT a.kind INTO asset_kind FROM assets a WHERE a.filename = file FOR KEY SHARE;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'foreign_key_violation',
                    MESSAGE = format('unknown lora "%s"', file),
                    DETAIL  = format('Entry loras[%s].file names a file that is not in the assets table.', pos),
                    HINT    = 'Register it first: spotq assets import FILE',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_must_be_registered_loras';
            ELSIF asset_kind <> 'lora' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'foreign_key_violation',
                    MESSAGE = format('"%s" is a %s, not a lora', file, asset_kind),
                    DETAIL  = format('Entry loras[%s].file must name an asset of kind lora.', pos),
                    HINT    = 'An item has one checkpoint, in the checkpoint column; loras lists LoRA files only.',
                    TABLE = TG_TABLE_NAME, COLUMN = 'loras', CONSTRAINT = 'loras_must_be_registered_loras';
            END IF;
            files := files || file;
        END LOOP;
    END IF;

    -- prompt: an object with a non-empty string "positive"; known optional
    -- keys are type-checked (JSON null counts as absent), others are kept.
    IF NEW.prompt IS NOT NULL THEN
        IF jsonb_typeof(NEW.prompt) <> 'object' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('prompt must be a JSON object, not %s', jsonb_typeof(NEW.prompt)),
                HINT    = 'For example {"positive": "a lighthouse at dusk", "negative": "blurry", "seed": 42, "width": 512, "height": 512, "steps": 20}.',
                TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
        END IF;
        IF NOT NEW.prompt ? 'positive' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = 'prompt.positive is missing',
                HINT    = 'A prompt needs at least {"positive": "<what to draw>"}.',
                TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
        END IF;
        IF jsonb_typeof(NEW.prompt -> 'positive') <> 'string' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('prompt.positive must be a string, not %s', jsonb_typeof(NEW.prompt -> 'positive')),
                TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
        END IF;
        IF btrim(NEW.prompt ->> 'positive') = '' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = 'prompt.positive must not be empty',
                TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
        END IF;
        FOREACH k IN ARRAY ARRAY['negative', 'sampler_name', 'scheduler'] LOOP
            v := NEW.prompt -> k;
            IF v IS NOT NULL AND jsonb_typeof(v) NOT IN ('string', 'null') THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('prompt.%s must be a string, not %s', k, jsonb_typeof(v)),
                    TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
            END IF;
        END LOOP;
        FOREACH k IN ARRAY ARRAY['seed', 'width', 'height', 'steps', 'cfg'] LOOP
            v := NEW.prompt -> k;
            CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';
            lo := CASE k WHEN 'seed' THEN 0 WHEN 'steps' THEN 1 WHEN 'cfg' THEN 0 ELSE 16 END;
            hi := CASE k WHEN 'seed' THEN 18446744073709551615 WHEN 'steps' THEN 10000
                         WHEN 'cfg' THEN 100 ELSE 16384 END;
            whole := k <> 'cfg';
            IF (CASE WHEN jsonb_typeof(v) <> 'number' THEN true
                     ELSE (whole AND (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric))
                          OR (v #>> '{}')::numeric NOT BETWEEN lo AND hi END) THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('prompt.%s must be %s between %s and %s, not %s',
                                     k, CASE WHEN whole THEN 'a whole number' ELSE 'a number' END,
                                     lo, hi, left(v::text, 100)),
                    TABLE = TG_TABLE_NAME, COLUMN = 'prompt', CONSTRAINT = 'prompt_is_an_object_with_positive';
            END IF;
        END LOOP;
    END IF;

    -- workflow: ComfyUI API format.
    IF NEW.workflow IS NOT NULL THEN
        IF jsonb_typeof(NEW.workflow) <> 'object' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow must be a JSON object in ComfyUI API format, not %s', jsonb_typeof(NEW.workflow)),
                DETAIL  = 'API format is an object of nodes keyed by id: {"3": {"class_type": "KSampler", "inputs": {...}}, ...}.',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        END IF;
        IF NEW.workflow ? 'nodes' AND NEW.workflow ? 'links' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = 'workflow is in ComfyUI''s UI format, not API format',
                DETAIL  = 'It has top-level "nodes" and "links"; API format is an object of nodes keyed by id: {"3": {"class_type": "KSampler", "inputs": {...}}, ...}.',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        END IF;
        IF jsonb_typeof(NEW.workflow -> 'prompt') = 'object' AND NOT NEW.workflow -> 'prompt' ? 'class_type' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = 'workflow is a ComfyUI /prompt request body, not a workflow',
                DETAIL  = 'It has a top-level "prompt" object that is not a node.',
                HINT    = 'Store only the value of its "prompt" key: the object of nodes keyed by id.',
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        END IF;
        IF NEW.workflow = '{}' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = 'workflow has no nodes',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        END IF;

        -- One pass over the nodes finds the first problem, by kind: 1..3 the
        -- node's shape, 4..5 the models it loads (reported after links).
        SELECT n.key, n.value, n.problem INTO node_id, node, problem
        FROM (SELECT e.key, e.value,
                     CASE
                       WHEN jsonb_typeof(e.value) <> 'object' THEN 1
                       WHEN jsonb_typeof(e.value -> 'class_type') IS DISTINCT FROM 'string'
                            OR btrim(e.value ->> 'class_type') = '' THEN 2
                       WHEN jsonb_typeof(e.value -> 'inputs') IS DISTINCT FROM 'object' THEN 3
                       WHEN e.value ->> 'class_type' IN ('CheckpointLoaderSimple', 'CheckpointLoader',
                                                         'ImageOnlyCheckpointLoader', 'unCLIPCheckpointLoader')
                            AND jsonb_typeof(e.value -> 'inputs' -> 'ckpt_name') = 'string'
                            AND e.value -> 'inputs' ->> 'ckpt_name' <> NEW.checkpoint THEN 4
                       WHEN NEW.loras IS NOT NULL
                            AND e.value ->> 'class_type' IN ('LoraLoader', 'LoraLoaderModelOnly')
                            AND jsonb_typeof(e.value -> 'inputs' -> 'lora_name') = 'string'
                            AND NOT (e.value -> 'inputs' ->> 'lora_name') = ANY (files) THEN 5
                     END AS problem
              FROM jsonb_each(NEW.workflow) AS e) AS n
        WHERE n.problem IS NOT NULL
        ORDER BY n.problem
        LIMIT 1;
        IF problem = 1 THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow node "%s" must be an object, not %s', node_id, jsonb_typeof(node)),
                DETAIL  = 'Each node is {"class_type": "KSampler", "inputs": {...}}.',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        ELSIF problem = 2 THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow node "%s" has no "class_type" string', node_id),
                DETAIL  = 'Each node is {"class_type": "KSampler", "inputs": {...}}.',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        ELSIF problem = 3 THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow node "%s" (%s) has no "inputs" object', node_id, node ->> 'class_type'),
                DETAIL  = 'Each node is {"class_type": "KSampler", "inputs": {...}}; use "inputs": {} for a node without inputs.',
                HINT    = api_hint,
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
        END IF;

        -- Links: ComfyUI treats every list input as ["<node id>", <output
        -- index>]. Every node now has an "inputs" object, so the strict path
        -- cannot fail. A cheap test first; names for the message only if needed.
        PERFORM 1
        FROM jsonb_path_query(NEW.workflow, 'strict $.*.inputs.* ? (@.type() == "array")') AS l(link)
        WHERE NOT (jsonb_array_length(l.link) = 2
                   AND jsonb_typeof(l.link -> 0) = 'string'
                   AND jsonb_typeof(l.link -> 1) = 'number'
                   AND NEW.workflow ? (l.link ->> 0))
        LIMIT 1;
        IF FOUND THEN
            SELECT n.key, n.value ->> 'class_type', i.key, i.value INTO node_id, class_name, input_name, v
            FROM jsonb_each(NEW.workflow) AS n,
                 jsonb_each(n.value -> 'inputs') AS i
            -- CASE, not AND: SQL does not promise to test the array type first.
            WHERE CASE WHEN jsonb_typeof(i.value) = 'array'
                       THEN NOT (jsonb_array_length(i.value) = 2
                                 AND jsonb_typeof(i.value -> 0) = 'string'
                                 AND jsonb_typeof(i.value -> 1) = 'number'
                                 AND NEW.workflow ? (i.value ->> 0))
                       ELSE false END
            LIMIT 1;
            IF jsonb_array_length(v) = 2 AND jsonb_typeof(v -> 0) = 'string' AND jsonb_typeof(v -> 1) = 'number' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('workflow node "%s" (%s) input "%s" links to node "%s", which is not in the workflow',
                                     node_id, class_name, input_name, v ->> 0),
                    HINT    = 'A node may only link to nodes of the same workflow. ' || api_hint,
                    TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
            ELSE
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    MESSAGE = format('workflow node "%s" (%s) input "%s" is not a valid link', node_id, class_name, input_name),
                    DETAIL  = format('A link is ["<node id>", <output index>]; got %s.', left(v::text, 200)),
                    HINT    = api_hint,
                    TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_is_comfyui_api_format';
            END IF;
        END IF;

        -- Models: a pod downloads only the item's checkpoint and loras, so
        -- the standard loader nodes must not load anything else.
        IF problem = 4 THEN
            loaded := node -> 'inputs' ->> 'ckpt_name';
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow node "%s" (%s) loads checkpoint "%s", but the item''s checkpoint is "%s"',
                                 node_id, node ->> 'class_type', loaded, NEW.checkpoint),
                DETAIL  = 'An item uses exactly one checkpoint, and the pod downloads only that one.',
                HINT    = format('Set checkpoint to "%s", or ckpt_name in the workflow to "%s".', loaded, NEW.checkpoint),
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_loads_only_the_items_models';
        ELSIF problem = 5 THEN
            loaded := node -> 'inputs' ->> 'lora_name';
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = format('workflow node "%s" (%s) loads lora "%s", which is not in loras',
                                 node_id, node ->> 'class_type', loaded),
                DETAIL  = 'The pod downloads only the LoRAs listed in loras.',
                HINT    = format('Add {"file": "%s", "strength": 1.0} to loras.', loaded),
                TABLE = TG_TABLE_NAME, COLUMN = 'workflow', CONSTRAINT = 'workflow_loads_only_the_items_models';
        END IF;
    END IF;

    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION image_generation_queue_check_row() IS
    'BEFORE INSERT/UPDATE row trigger on image_generation_queue: new items are pending; checkpoint and loras name registered assets of the right kind; loras, prompt and workflow have the documented JSON shapes; the workflow''s loader nodes load only the item''s checkpoint and loras.';

CREATE TRIGGER image_generation_queue_check_row
    BEFORE INSERT OR UPDATE OF checkpoint, loras, prompt, workflow ON image_generation_queue
    FOR EACH ROW EXECUTE FUNCTION image_generation_queue_check_row();

-- Wake the planner when work arrives. Statement level with a transition
-- table, so a 50,000-row insert sends ONE notification; rows skipped by
-- ON CONFLICT DO NOTHING are not in the transition table.
CREATE FUNCTION image_generation_queue_notify_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pending_count bigint;
BEGIN
    SELECT count(*) INTO pending_count FROM inserted WHERE status = 'pending';
    IF pending_count > 0 THEN
        PERFORM pg_notify('spotq_pending', pending_count::text);
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION image_generation_queue_notify_pending() IS
    'AFTER INSERT statement trigger: NOTIFY spotq_pending with the number of pending rows the statement inserted (as text), once per statement, only when > 0. Delivered at commit.';

CREATE TRIGGER image_generation_queue_notify_pending
    AFTER INSERT ON image_generation_queue
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION image_generation_queue_notify_pending();

-- loras is JSON, so no foreign key protects a LoRA asset a queue item
-- names. This does: it refuses to delete, rename or re-kind such a LoRA.
-- AFTER, so that a concurrent insert holding FOR KEY SHARE on the asset
-- (see the check trigger) has committed and is visible by the time it runs.
CREATE FUNCTION assets_guard_lora_references() RETURNS trigger
LANGUAGE plpgsql
-- Resolve table names in the schema the migration ran in, whatever the
-- search_path of the session that fires the trigger.
SET search_path FROM CURRENT
AS $$
DECLARE
    item_id    bigint;
    item_req   text;
BEGIN
    IF OLD.kind = 'lora'
       AND (TG_OP = 'DELETE' OR NEW.filename <> OLD.filename OR NEW.kind <> OLD.kind) THEN
        SELECT q.id, q.request_id INTO item_id, item_req
        FROM image_generation_queue q
        WHERE q.loras @> jsonb_build_array(jsonb_build_object('file', OLD.filename))
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = format('cannot %s lora "%s": queue items still list it in loras',
                                 CASE TG_OP WHEN 'DELETE' THEN 'delete' ELSE 'change' END, OLD.filename),
                DETAIL  = format('For example item %s (request_id "%s").', item_id, item_req),
                HINT    = 'Delete those items first, or register the changed file under a new name.',
                TABLE = TG_TABLE_NAME, COLUMN = 'filename', CONSTRAINT = 'loras_must_be_registered_loras';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION assets_guard_lora_references() IS
    'AFTER UPDATE/DELETE row trigger on assets: a LoRA named in any image_generation_queue.loras cannot be deleted, renamed or re-kinded (the foreign-key protection loras jsonb cannot have).';

CREATE TRIGGER assets_guard_lora_references
    AFTER UPDATE OF filename, kind OR DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_guard_lora_references();
