-- 0017: a cap on the workflow's size.
--
-- Every work message carries its item's workflow. AMQP enqueue caps a whole
-- message at 1 MiB by default (SPOTQ_ENQUEUE_MAX_BYTES), but SQL enqueue had
-- no cap on the workflow: a website bug could queue one the broker then
-- refuses to carry (compose sets max_message_size to 4 MiB), and its batch
-- would be retried at every publishing run, holding up the batches after it.
-- A ComfyUI workflow in API format is a few kilobytes; 1 MiB of JSON text is
-- far beyond any real one. NOT VALID: rows already queued are not re-checked
-- (and not refused by the migration); every new or changed row is.

ALTER TABLE image_generation_queue
    ADD CONSTRAINT workflow_is_at_most_1_mib
    CHECK (octet_length(workflow::text) <= 1048576) NOT VALID;
