-- Every query of the store. Sections start with `-- name: <name>`; the text
-- up to the next section is the statement. Placeholders, replaced once in
-- New (or per call for {values} and {where}):
--   {schema}  the sanitized schema identifier (names never rely on search_path)
--   {cols}    the task columns, in the order scanTask reads them
--   {values}  one parenthesised tuple of parameters per row of a batch
--   {where}   optional filters built from validated enum values

-- name: insert
-- One multi-row INSERT for a whole batch. Rows: (id, client_key, request_hash,
-- role, priority, max_attempts, payload, pipeline_id, stage); rows with a
-- NULL id are padding (see valuesCache) and insert nothing. A key that
-- already exists inserts nothing and returns nothing.
INSERT INTO {schema}.tasks (id, client_key, request_hash, role, priority, max_attempts, payload, pipeline_id, stage)
SELECT *
FROM (VALUES {values}) AS v (id, client_key, request_hash, role, priority, max_attempts, payload, pipeline_id, stage)
WHERE v.id IS NOT NULL
ON CONFLICT (client_key) WHERE client_key IS NOT NULL DO NOTHING
RETURNING {cols}

-- name: by_client_key
-- $1 client keys. The existing rows behind keys an insert skipped.
SELECT request_hash, {cols}
FROM {schema}.tasks
WHERE client_key = ANY($1::text[])

-- name: activate
-- $1 worker, $2 ids. pending|failed → active; whatever is not returned was
-- taken or finished by someone else.
UPDATE {schema}.tasks
SET state = 'active', attempts = attempts + 1, worker_id = $1,
    started_at = now(), updated_at = now()
WHERE id = ANY($2::uuid[]) AND state IN ('pending', 'failed')
RETURNING {cols}

-- name: finish
-- $1 worker, $2 fresh ids for next pipeline stages (at least one per row).
-- Rows: (id, attempt, err — NULL on success, retry_at — NULL means now);
-- padding rows have a NULL id and match nothing.
-- active → completed | failed | dead, only where this worker still owns this
-- attempt; each completed ARCHITECT/DEVELOPER stage of a pipeline inserts
-- the next stage in the same statement (one atomic transaction).
WITH done AS (
    UPDATE {schema}.tasks t
    SET state = CASE WHEN v.err IS NULL THEN 'completed'
                     WHEN t.attempts < t.max_attempts THEN 'failed'
                     ELSE 'dead' END,
        completed_at = CASE WHEN v.err IS NULL THEN now() END,
        last_error = COALESCE(v.err, t.last_error),
        run_at = CASE WHEN v.err IS NOT NULL AND t.attempts < t.max_attempts
                      THEN COALESCE(v.retry_at, now()) END,
        updated_at = now()
    FROM (VALUES {values}) AS v (vid, attempt, err, retry_at)
    WHERE t.id = v.vid AND t.state = 'active' AND t.worker_id = $1 AND t.attempts = v.attempt
    RETURNING {cols}
), staged AS (
    INSERT INTO {schema}.tasks (id, role, priority, max_attempts, payload, pipeline_id, stage)
    SELECT ($2::uuid[])[row_number() OVER ()],
           CASE d.role WHEN 'ARCHITECT' THEN 'DEVELOPER' WHEN 'DEVELOPER' THEN 'QA' END,
           d.priority, d.max_attempts, d.payload, d.pipeline_id, d.stage + 1
    FROM done d
    WHERE d.state = 'completed' AND d.pipeline_id IS NOT NULL AND d.role IN ('ARCHITECT', 'DEVELOPER')
    RETURNING {cols}
)
SELECT false, {cols} FROM done
UNION ALL
SELECT true, {cols} FROM staged

-- name: return_active
-- $1 worker, $2 reason. The reaper's return of a worker that lost its lease:
-- the attempt counts (it was counted at activate), so a task out of
-- attempts goes to the dead-letter queue instead of back to pending.
UPDATE {schema}.tasks
SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
    last_error = $2, run_at = NULL, updated_at = now()
WHERE state = 'active' AND worker_id = $1
RETURNING {cols}

-- name: release
-- $1 worker, $2 ids. Graceful shutdown: active → pending without counting
-- the attempt (activate's increment is undone).
UPDATE {schema}.tasks
SET state = 'pending', attempts = attempts - 1, run_at = NULL, updated_at = now()
WHERE id = ANY($2::uuid[]) AND state = 'active' AND worker_id = $1
RETURNING {cols}

-- name: reset_active
-- $1 age in microseconds. After Redis lost its data: active rows started
-- longer ago than that → pending, attempt not counted.
UPDATE {schema}.tasks
SET state = 'pending', attempts = GREATEST(attempts - 1, 0), run_at = NULL, updated_at = now()
WHERE state = 'active' AND started_at < now() - $1::bigint * interval '1 microsecond'
RETURNING {cols}

-- name: recoverable
-- $1 after (id), $2 limit. Keyset scan of waiting work (tasks_queued_idx).
SELECT {cols}
FROM {schema}.tasks
WHERE state IN ('pending', 'failed') AND id > $1::uuid
ORDER BY id
LIMIT $2

-- name: stale_pending
-- $1 age in microseconds, $2 limit, $3 an id bound: ids are UUIDv7 and a
-- row's updated_at is never before its creation, so only ids created before
-- the cutoff (plus a clock-skew margin) can be stale, and a large young
-- backlog is not scanned at all. Waiting rows nothing touched for that long
-- (pending: since written; failed: since their retry fell due) get updated_at
-- bumped — so each is reported once per age — and are returned for the
-- caller to push to Redis again. SKIP LOCKED: rows being activated right now
-- are not stale.
UPDATE {schema}.tasks t
SET updated_at = now()
FROM (
    SELECT id AS sid
    FROM {schema}.tasks
    WHERE state IN ('pending', 'failed') AND id < $3::uuid
      AND GREATEST(run_at, updated_at) < now() - $1::bigint * interval '1 microsecond'
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) s
WHERE t.id = s.sid
RETURNING {cols}

-- name: get
SELECT {cols} FROM {schema}.tasks WHERE id = $1::uuid

-- name: list
-- {where} holds the state literal, role and cursor conditions; the last
-- parameter is the limit.
SELECT {cols}
FROM {schema}.tasks
{where}
ORDER BY created_at DESC, id DESC
LIMIT {limit}

-- name: requeue_dead
-- dead → pending with a fresh budget of attempts; last_error is kept.
UPDATE {schema}.tasks
SET state = 'pending', attempts = 0, run_at = NULL, updated_at = now()
WHERE state = 'dead' {where}
RETURNING {cols}

-- name: purge_dead
DELETE FROM {schema}.tasks WHERE state = 'dead' {where}

-- name: counts
-- Non-completed states only: an index-only scan of tasks_open_idx.
SELECT role, state, count(*)
FROM {schema}.tasks
WHERE state IN ('pending', 'active', 'failed', 'dead')
GROUP BY role, state
