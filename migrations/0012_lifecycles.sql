-- 0012: every declared status is one something reaches (SpotqCore/Lifecycle).
--
-- Items: nothing ever wrote 'dead'. An item whose work message is dead-lettered
-- is 'failed' (the pod's final image.failed, or the server recording the dead
-- letter when the broker's delivery limit sent it without an event); 'dead'
-- goes. Batches: nothing cancels a batch, so 'cancelled' goes; 'running' is
-- now reached (the batch's first image.started sets it and started_at).
-- Rows in a removed status (none are expected) move to 'failed' first.

UPDATE image_generation_queue SET status = 'failed' WHERE status = 'dead';
ALTER TABLE image_generation_queue
    DROP CONSTRAINT status_is_pending_planned_queued_running_done_failed_or_dead,
    ADD CONSTRAINT status_is_pending_planned_queued_running_done_or_failed
        CHECK (status IN ('pending', 'planned', 'queued', 'running', 'done', 'failed'));

COMMENT ON TABLE image_generation_queue IS
    'One row per requested image. The website inserts it as pending (INSERT ... ON CONFLICT (request_id) DO NOTHING); spotq moves it pending -> planned -> queued -> running -> done | failed (ItemStatus in SpotqCore says who moves it). Inserting pending rows NOTIFYs channel spotq_pending.';
COMMENT ON COLUMN image_generation_queue.status IS
    'pending (not in a batch), planned (in a batch), queued (its work message waits in the batch queue), running (a pod took it), done (image stored; final), failed (given up with last_error: its work message is in dead_letters, and `spotq dlq replay` queues it again).';

UPDATE batches SET status = 'failed', finished_at = coalesce(finished_at, now()) WHERE status = 'cancelled';
ALTER TABLE batches
    DROP CONSTRAINT status_planned_publishing_queued_running_done_failed_cancelled,
    ADD CONSTRAINT status_planned_publishing_queued_running_done_or_failed
        CHECK (status IN ('planned', 'publishing', 'queued', 'running', 'done', 'failed')),
    DROP CONSTRAINT done_failed_or_cancelled_batch_has_finished_at,
    ADD CONSTRAINT done_or_failed_batch_has_finished_at
        CHECK (status NOT IN ('done', 'failed') OR finished_at IS NOT NULL);

COMMENT ON TABLE batches IS
    'A planned unit of work: items sharing model files, run by one or more pods. planned -> publishing -> queued -> running -> done | failed (BatchStatus in SpotqCore says who moves it).';
COMMENT ON COLUMN batches.status IS
    'planned (the planner wrote it), publishing (work messages being published), queued (all published: published_at set), running (its first image started: started_at set), done (every item settled, some image stored) | failed (every item settled, none stored) (finished_at set); a replayed dead letter queues a finished batch again.';
COMMENT ON COLUMN batches.last_error IS 'Why the batch failed, for operators.';
