-- 0006: an item's place in its batch's generation order.
--
-- The planner decides the order in which a pod should generate a batch's items
-- (items whose models arrive first go first). Work messages are published in
-- that order; the position is kept so that a publisher that died half-way
-- publishes the rest in the same order on its next run.

ALTER TABLE image_generation_queue
    ADD COLUMN batch_position integer;

ALTER TABLE image_generation_queue
    ADD CONSTRAINT batch_position_is_not_negative
        CHECK (batch_position >= 0),
    ADD CONSTRAINT pending_item_has_no_batch_position
        CHECK (status <> 'pending' OR batch_position IS NULL);

COMMENT ON COLUMN image_generation_queue.batch_position IS
    'Position (0-based) in the batch''s generation order, set by the planner; NULL while pending.';

-- The publisher: a batch's planned (not yet published) items, in order.
CREATE INDEX image_generation_queue_planned_idx
    ON image_generation_queue (batch_id, batch_position)
    WHERE status = 'planned';
