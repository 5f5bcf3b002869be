-- 0001: the tasks table, the system of record of every Agent Mesh task.
--
-- {schema} is replaced by the sanitized Config.Schema identifier before this
-- file runs, so nothing here depends on the connection's search_path.
--
-- Write amplification: every state transition changes `state`, which every
-- partial index below references, so transitions are never HOT updates and
-- each one inserts a tuple into every index whose predicate the new row
-- satisfies. The happy path of one task (insert pending → active → completed)
-- therefore costs: tasks_pkey 3, tasks_created_idx 3, tasks_open_idx 2
-- (pending, active), tasks_queued_idx 1 (pending) — completed rows enter only
-- the two full indexes. Keyed and pipeline tasks add their own partial index.
CREATE TABLE {schema}.tasks (
    id           uuid        NOT NULL,
    client_key   text,
    request_hash bytea,
    role         text        NOT NULL,
    priority     smallint    NOT NULL,
    state        text        NOT NULL DEFAULT 'pending',
    attempts     integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL,
    payload      jsonb       NOT NULL DEFAULT '{}',
    worker_id    text,
    pipeline_id  uuid,
    stage        smallint,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    completed_at timestamptz,
    run_at       timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_role_check CHECK (role IN ('ARCHITECT', 'DEVELOPER', 'QA')),
    CONSTRAINT tasks_state_check CHECK (state IN ('pending', 'active', 'completed', 'failed', 'dead')),
    CONSTRAINT tasks_priority_check CHECK (priority BETWEEN 0 AND 3),
    CONSTRAINT tasks_attempts_check CHECK (attempts >= 0),
    CONSTRAINT tasks_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 25),
    CONSTRAINT tasks_client_key_check CHECK (char_length(client_key) BETWEEN 1 AND 200),
    CONSTRAINT tasks_pipeline_check CHECK ((pipeline_id IS NULL) = (stage IS NULL) AND stage BETWEEN 1 AND 3),
    CONSTRAINT tasks_active_check CHECK (state <> 'active' OR (worker_id IS NOT NULL AND attempts >= 1))
) WITH (
    -- A churning queue table: vacuum early so dead versions and index
    -- entries of finished transitions are reclaimed before they pile up.
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02
);

-- Idempotency: one task per client key. Partial, so the (usual) keyless task
-- costs nothing here; ON CONFLICT infers it with the same WHERE clause.
CREATE UNIQUE INDEX tasks_client_key_key ON {schema}.tasks (client_key)
    WHERE client_key IS NOT NULL;

-- Listing without a state filter, and of completed tasks: keyset paging on
-- (created_at, id) descending.
CREATE INDEX tasks_created_idx ON {schema}.tasks (created_at DESC, id DESC);

-- Everything not completed: listing by state (role filtered from the included
-- column), dead letters by role, active rows of a worker (ReturnActive) or of
-- everyone (ResetActive), and Counts as an index-only scan once vacuumed.
-- Completed rows — the bulk of the table — never enter it.
CREATE INDEX tasks_open_idx ON {schema}.tasks (state, created_at DESC, id DESC) INCLUDE (role)
    WHERE state IN ('pending', 'active', 'failed', 'dead');

-- Waiting work in id (≈ creation, ids are UUIDv7) order: Recoverable's keyset
-- scan to rebuild Redis, and StalePending. One entry per task on insert.
CREATE INDEX tasks_queued_idx ON {schema}.tasks (id)
    WHERE state IN ('pending', 'failed');

-- Pipeline lookups, and a guard that a pipeline has at most one task per
-- stage (a second completion could never insert a second next stage).
CREATE UNIQUE INDEX tasks_pipeline_key ON {schema}.tasks (pipeline_id, stage)
    WHERE pipeline_id IS NOT NULL;
