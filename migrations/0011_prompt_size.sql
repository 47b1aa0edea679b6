-- 0011: a cap on the prompt's size.
--
-- AMQP enqueue caps a whole message (1 MiB by default); SQL enqueue had no
-- cap at all, so a website bug could queue a prompt of hundreds of megabytes
-- that every work message, pod and ComfyUI request then carries. A prompt is
-- text for CLIP plus a few numbers: 64 KiB of JSON is far beyond any real one.
-- NOT VALID: rows already queued are not re-checked (and not refused by the
-- migration); every new or changed row is.

ALTER TABLE image_generation_queue
    ADD CONSTRAINT prompt_is_at_most_64_kib
    CHECK (octet_length(prompt::text) <= 65536) NOT VALID;

COMMENT ON COLUMN image_generation_queue.prompt IS
    'JSON object describing the image, at most 64 KiB as JSON text: "positive" (non-empty string) is required; optional, type-checked when present and not null: "negative", "sampler_name", "scheduler" (strings), "seed" (0..18446744073709551615), "width", "height" (16..16384), "steps" (1..10000) (whole numbers), "cfg" (number 0..100). Other keys are kept as they are.';
