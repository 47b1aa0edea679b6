-- 0004: image_generation_files, one row per stored output file.
-- Ingest is idempotent: a re-uploaded bundle hits the (item_id, filename)
-- key, so INSERT ... ON CONFLICT (item_id, filename) DO NOTHING is safe.

CREATE TABLE image_generation_files (
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    item_id       bigint      NOT NULL,
    filename      text        NOT NULL,
    bytes         bigint      NOT NULL,
    sha256        text        NOT NULL,
    content_type  text        NOT NULL,
    storage_path  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT file_id_must_be_unique PRIMARY KEY (id),
    CONSTRAINT filename_must_be_unique_per_item UNIQUE (item_id, filename),
    -- Deleting a queue item deletes the record of its files (not the files).
    CONSTRAINT item_id_must_be_an_existing_queue_item
        FOREIGN KEY (item_id) REFERENCES image_generation_queue (id)
        ON UPDATE RESTRICT ON DELETE CASCADE,

    -- The name comes from the pod's bundle: a bare file name only.
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
    CONSTRAINT bytes_is_positive
        CHECK (bytes > 0),
    CONSTRAINT sha256_is_64_lowercase_hex
        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT content_type_is_png_jpeg_or_webp
        CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    -- Browsers and tools trust the extension; keep it honest. (An unknown
    -- content type or an empty name is another rule's error, not this one.)
    CONSTRAINT filename_extension_matches_content_type
        CHECK (content_type NOT IN ('image/png', 'image/jpeg', 'image/webp')
               OR filename = ''
               OR (content_type = 'image/png'  AND filename ~* '\.png$')
               OR (content_type = 'image/jpeg' AND filename ~* '\.jpe?g$')
               OR (content_type = 'image/webp' AND filename ~* '\.webp$')),
    CONSTRAINT storage_path_is_not_empty
        CHECK (btrim(storage_path) <> ''),
    CONSTRAINT storage_path_has_no_dot_dot_segment
        CHECK (storage_path !~ '(^|[/\\])\.\.([/\\]|$)')
);

COMMENT ON TABLE image_generation_files IS
    'One row per stored output file of a queue item, written by ingest; unique per (item_id, filename).';
COMMENT ON COLUMN image_generation_files.item_id IS 'The queue item the file belongs to.';
COMMENT ON COLUMN image_generation_files.filename IS
    'Bare file name from the result bundle (no "/", no ".."), extension matching content_type, e.g. "ComfyUI_00001_.png".';
COMMENT ON COLUMN image_generation_files.bytes IS 'File size in bytes.';
COMMENT ON COLUMN image_generation_files.sha256 IS 'SHA-256 of the stored file, 64 lowercase hex digits; ingest verifies it.';
COMMENT ON COLUMN image_generation_files.content_type IS 'image/png, image/jpeg or image/webp.';
COMMENT ON COLUMN image_generation_files.storage_path IS
    'Where the server stored the file (path or object key in its image store); no ".." segments.';
