-- Lab 07: the job's resource, applied by the grader before any worker starts.
--
-- charges: one row per charge the subscription job made: the tick it charged for, the term the
--   node said it led in, and the node. Once per tick means one row per tick. Your role may read
--   and insert rows, never change or delete them; the grader reads them in the order they were
--   made (`seq`).
-- fence: yours to use for fencing (one row per job `name`, holding the largest term the
--   resource has seen), or ignore if you fence another way. Nobody else writes it.
CREATE TABLE IF NOT EXISTS charges (
    seq   bigserial PRIMARY KEY,
    tick  bigint NOT NULL,
    term  bigint NOT NULL,
    node  text   NOT NULL
);

CREATE TABLE IF NOT EXISTS fence (
    name  text PRIMARY KEY,
    term  bigint NOT NULL
);
