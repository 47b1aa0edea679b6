-- 0018: a pod's worker may report the pod 'faulted' (PodState.faulted in
-- SpotqCore/Lifecycle): ComfyUI on it is unreachable or keeps failing for
-- reasons that are not its items', or does not see the worker's model
-- folders. The worker hands its work back and exits 5; the provisioner
-- terminates the pod like a gpu_failed one and replaces it while demand
-- remains. Both columns holding a pod state allow the new value.

ALTER TABLE pods
    DROP CONSTRAINT state_is_a_pod_lifecycle_state,
    ADD CONSTRAINT state_is_a_pod_lifecycle_state
        CHECK (state IN ('requested', 'starting', 'gpu_failed', 'faulted', 'downloading',
                         'generating', 'draining', 'reclaimed', 'terminated'));

ALTER TABLE pod_events
    DROP CONSTRAINT state_is_a_pod_lifecycle_state,
    ADD CONSTRAINT state_is_a_pod_lifecycle_state
        CHECK (state IN ('requested', 'starting', 'gpu_failed', 'faulted', 'downloading',
                         'generating', 'draining', 'reclaimed', 'terminated'));

COMMENT ON COLUMN pods.state IS
    'requested -> starting -> downloading -> generating -> draining -> terminated; gpu_failed (GPU check failed, the pod terminates itself); faulted (its worker found ComfyUI unusable for reasons not its items'', handed its work back and left: terminate and replace); reclaimed (spot capacity taken back: resume or replace).';
COMMENT ON COLUMN pod_events.state IS 'The pod''s new state, for kind ''state'' (required there); same values as pods.state.';
