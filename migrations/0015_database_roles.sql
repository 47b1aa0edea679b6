-- 0015: least-privilege roles for the website, `spotq server` and `spotq provisioner`.
--
-- Three NOLOGIN group roles. A deployment makes one login user per
-- component, a member of its role, and gives it a password by hand (never in
-- a migration):
--   CREATE ROLE website_app LOGIN IN ROLE spotq_website;
-- Operators' commands (`spotq migrate`, `assets`, `plan --apply`, `enqueue
-- --via sql`, `status`, `batches`, `pods`, `queues`, `cost`, `dlq`, `bench`)
-- keep running as the owner of the schema.
--
-- FOR LATER MIGRATIONS: a new table, or a new column a component writes,
-- gets its GRANTs in the same migration, next to the CREATE or ALTER: SELECT
-- (and the columns it writes) for spotq_server, and whatever the provisioner
-- or the website must touch. No default privileges are set on purpose: they
-- would hand every future table to a role without anyone deciding it, and
-- they only apply to tables made by the role that set them.
--
-- Roles belong to the cluster, and migrations of several databases of one
-- cluster run at once (the tests' parallel databases). An advisory lock does
-- not help there: advisory locks are per database. A second CREATE ROLE of
-- the same name waits for the first transaction and then fails with
-- unique_violation (duplicate_object when the first had committed before);
-- either means another database's migration made the role, so it is kept.
-- Only the creator comments on the role: two COMMENT ON ROLE at once collide.
-- GRANTs are per database and need no such care.
DO $$
DECLARE
    role_name    text;
    role_comment text;
BEGIN
    FOR role_name, role_comment IN
        SELECT * FROM (VALUES
            ('spotq_website', 'spotq: what the website may do: insert requests into image_generation_queue, read their status and image_generation_files.'),
            ('spotq_server', 'spotq: what `spotq server` needs (enqueue, planner, ingest, events, dead letters, demand, ops and metrics).'),
            ('spotq_provisioner', 'spotq: what `spotq provisioner` needs (pods, their costs and alerts).')
        ) AS r(name, comment)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXECUTE format('COMMENT ON ROLE %I IS %L', role_name, role_comment);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration made it meanwhile
        END;
    END LOOP;
END;
$$;

-- The row checks look assets up, with FOR KEY SHARE (which needs UPDATE on
-- assets): run as the invoker, the website and the planner would need that.
-- They run as their owner instead, with a search_path no other role can
-- plant objects in: the migration's schema, pg_temp last (else a temporary
-- table named assets would come first). PostgreSQL 15 no longer lets PUBLIC
-- create in the public schema; a database upgraded from an older release
-- still does, so that is revoked too (a no-op where it is already so).
-- assets_guard_lora_references stays as it is: only operators, as the
-- owner, change or delete assets.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION image_generation_queue_check_row() SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION batches_check_assets() SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO spotq_website, spotq_server, spotq_provisioner', current_schema());
END;
$$;
-- Firing a trigger needs no EXECUTE; nobody calls these directly.
REVOKE EXECUTE ON FUNCTION image_generation_queue_check_row(), batches_check_assets() FROM PUBLIC;

-- The website: the README's INSERT (no status, batch or checkpoint_kind: the
-- rest is spotq's), its rows' status, and the stored files. Nothing else, and
-- no UPDATE or DELETE anywhere. ON CONFLICT (request_id) needs SELECT on
-- request_id, RETURNING id on id. Identity columns need no sequence grant;
-- the insert trigger's NOTIFY needs no privilege.
GRANT INSERT (request_id, checkpoint, loras, prompt, workflow, priority)
    ON image_generation_queue TO spotq_website;
GRANT SELECT (id, request_id, status, last_error, created_at, updated_at, planned_at, started_at, finished_at)
    ON image_generation_queue TO spotq_website;
GRANT SELECT ON image_generation_files TO spotq_website;

-- The server reads every table (planner, ingest, events, demand, ops pages,
-- /metrics) and writes only the columns its statements set (SpotqStore).
-- Not assets (operators import them), not the provisioner's pod columns.
-- Its start-up schema check is to_regclass(), which needs no grant, and
-- spotq_schema_migrations stays the owner's.
GRANT SELECT ON assets, batches, image_generation_queue, image_generation_files, pods, pod_events,
                fleet_alerts, fleet_cost_days, dead_letters, queue_samples TO spotq_server;
-- enqueue consumer (QueueStore.insert)
GRANT INSERT (request_id, checkpoint, loras, prompt, workflow, priority)
    ON image_generation_queue TO spotq_server;
-- planner, batch publisher, events, ingest, dead letters, replays (ingest's
-- SELECT … FOR UPDATE needs UPDATE as well)
GRANT UPDATE (status, batch_id, batch_position, planned_at, started_at, finished_at, attempts, interruptions, last_error)
    ON image_generation_queue TO spotq_server;
-- planner (PlannerStore.insert)
GRANT INSERT (status, assets, item_count, payload_bytes, estimated_payload_gb, estimated_setup_hours,
              estimated_run_hours, estimated_usd, estimated_usd_per_image, gpu_type)
    ON batches TO spotq_server;
-- planner (manifest, token hash), publisher, first image.started, settling, replays
GRANT UPDATE (status, manifest, upload_token_hash, published_at, started_at, finished_at)
    ON batches TO spotq_server;
-- ingest (ResultRowStore.recordDone)
GRANT INSERT (item_id, filename, bytes, sha256, content_type, storage_path)
    ON image_generation_files TO spotq_server;
-- event recorder (EventStore): a pod's reported state, heartbeats, first image
GRANT UPDATE (state, last_seen_at, started_at, resume_attempts, first_image_at)
    ON pods TO spotq_server;
GRANT INSERT (pod_id, provider, provider_pod_id, batch_id, event_key, kind, state, detail, occurred_at)
    ON pod_events TO spotq_server;
-- dead-letter recorder; a replay from the dashboard
GRANT INSERT (reason, origin_exchange, origin_routing_key, origin_queue, death_count, dead_lettered_at,
              message_id, content_type, headers, properties, body, dead_lettered_by)
    ON dead_letters TO spotq_server;
GRANT UPDATE (replay_count, replayed_at) ON dead_letters TO spotq_server;
-- demand publisher: samples, and dropping those older than seven days
GRANT INSERT (taken_at, queue, ready, unacknowledged), DELETE ON queue_samples TO spotq_server;

-- The provisioner (PodStore): pods it rents, reconciles, accrues and ends,
-- the fleet's history, its cost per day and its alerts. Nothing of the queue,
-- batches, files or dead letters. DELETE removes a row whose rental failed;
-- the cost-day upsert reads day (ON CONFLICT) and usd.
GRANT SELECT ON pods, pod_events TO spotq_provisioner;
GRANT INSERT (batch_id, provider, name, gpu_type, gpu_count, interruptible, bid_usd_per_gpu_hour, volume_gb,
              container_disk_gb, storage_usd_per_gb_month, state, accrued_until, upload_token_hash)
    ON pods TO spotq_provisioner;
GRANT UPDATE (broker_user, provider_pod_id, interruptible, bid_usd_per_gpu_hour, price_usd_per_hour, provider_status,
              state, started_at, terminated_at, last_seen_at, last_error, interruptions, resume_attempts,
              stop_requested_at, accrued_usd, accrued_until)
    ON pods TO spotq_provisioner;
GRANT DELETE ON pods TO spotq_provisioner;
GRANT SELECT (day, usd), INSERT (day, usd), UPDATE (usd) ON fleet_cost_days TO spotq_provisioner;
GRANT INSERT (kind, message, pod_id) ON fleet_alerts TO spotq_provisioner;
