-- Lab 10: what the consumers' effects leave in Postgres.
-- effects: one row per application of a record (the grader counts them per partition/offset);
-- balances: each account's running total (applying a record twice adds its amount twice);
-- consumer_offsets: free for the consumer's own use (e.g. the next offset of each partition,
-- written in the same transaction as the effects).
CREATE TABLE IF NOT EXISTS effects (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    member      text        NOT NULL,
    account     text        NOT NULL,
    amount      integer     NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS balances (
    account text PRIMARY KEY,
    total   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id    text    NOT NULL,
    topic       text    NOT NULL,
    "partition" integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, "partition")
);
