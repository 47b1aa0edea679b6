-- 0001: assets, the registry of every model file a queue item may name,
-- and the shared updated_at trigger function the later tables reuse.
--
-- Constraint names are written as the rule they enforce, because PostgreSQL
-- puts the name in the error message: 'violates check constraint
-- "sha256_is_64_lowercase_hex"' tells the person what to fix.
-- CHECK constraints on one table are tested in alphabetical order of name,
-- so each one tests only its own rule (an empty name fails only the length
-- rule, not the extension rule too).

-- One trigger function for every table with an updated_at column.
CREATE FUNCTION spotq_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION spotq_touch_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to the transaction time.';

CREATE TABLE assets (
    filename    text        NOT NULL,
    kind        text        NOT NULL,
    size_bytes  bigint      NOT NULL,
    sha256      text        NOT NULL,
    source_url  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT asset_filename_must_be_unique PRIMARY KEY (filename),
    -- Lets other tables reference (filename, kind), so a foreign key can
    -- demand "a registered asset of kind checkpoint".
    CONSTRAINT asset_filename_and_kind_are_unique UNIQUE (filename, kind),

    -- Pods place every asset flat in ComfyUI's models/checkpoints or
    -- models/loras folder under exactly this name: it must be a bare file
    -- name that cannot escape that folder or confuse a shell.
    CONSTRAINT filename_is_1_to_255_bytes
        CHECK (octet_length(filename) BETWEEN 1 AND 255),
    CONSTRAINT filename_has_no_slash_or_backslash
        CHECK (filename !~ '[/\\]'),
    CONSTRAINT filename_has_no_dot_dot
        CHECK (strpos(filename, '..') = 0),
    CONSTRAINT filename_does_not_start_with_dot
        CHECK (left(filename, 1) <> '.'),
    CONSTRAINT filename_has_no_control_characters
        CHECK (filename !~ '[[:cntrl:]]'),
    CONSTRAINT filename_does_not_start_or_end_with_space
        CHECK (filename !~ '^\s|\s$'),
    -- The extensions ComfyUI lists in its model folders (it compares them
    -- case-insensitively, so do we). '.pkl' is left out on purpose.
    CONSTRAINT filename_ends_in_safetensors_sft_ckpt_pt_pth_or_bin
        CHECK (filename = '' OR filename ~* '\.(safetensors|sft|ckpt|pt|pth|bin)$'),

    CONSTRAINT kind_is_checkpoint_or_lora
        CHECK (kind IN ('checkpoint', 'lora')),
    CONSTRAINT size_bytes_is_positive
        CHECK (size_bytes > 0),
    CONSTRAINT sha256_is_64_lowercase_hex
        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- A pod downloads the file from here, with Range requests to resume.
    CONSTRAINT source_url_is_an_http_or_https_url
        CHECK (source_url ~ '^https?://[^/?#[:space:]]+([/?#][^[:space:]]*)?$')
);

COMMENT ON TABLE assets IS
    'Every checkpoint and LoRA a queue item may name. Pods download these (by source_url, verified by size_bytes and sha256); the planner sums size_bytes into a batch''s payload.';
COMMENT ON COLUMN assets.filename IS
    'Bare file name as ComfyUI sees it in models/checkpoints or models/loras, e.g. "sd_xl_base_1.0.safetensors". No "/", no "..", 1..255 bytes, ends in .safetensors, .sft, .ckpt, .pt, .pth or .bin.';
COMMENT ON COLUMN assets.kind IS
    '''checkpoint'' or ''lora''. Queue items reference (filename, kind), so a LoRA cannot be used as a checkpoint or the other way round.';
COMMENT ON COLUMN assets.size_bytes IS
    'Exact file size in bytes; the planner''s payload estimate and the pod''s download progress use it.';
COMMENT ON COLUMN assets.sha256 IS
    'SHA-256 of the file as 64 lowercase hex digits; a pod verifies every download against it before emitting asset.ready.';
COMMENT ON COLUMN assets.source_url IS
    'http(s) URL a pod downloads the file from (must support Range requests for resume).';

CREATE TRIGGER assets_touch_updated_at
    BEFORE UPDATE ON assets
    FOR EACH ROW EXECUTE FUNCTION spotq_touch_updated_at();
