-- Lab 01: the resource the lock protects, applied by the grader before any worker starts.
--
-- resource: one row per key. `token` is there for your fence: the fencing token of the write that
--   produced the current value (0 when nobody has written with a token yet). You may keep your fence
--   elsewhere if you prefer; the grader only reads what ends up in `value`.
-- resource_audit: every INSERT or UPDATE of `resource`, recorded by a trigger with the transaction
--   that made it. For one key the rows are in commit order (the row lock serialises writers); the
--   grader keeps the last row of each transaction. It is how the grader sees what your storage
--   accepted. Your code cannot read or write it.
CREATE TABLE IF NOT EXISTS resource (
    key   text PRIMARY KEY,
    value text NOT NULL,
    token bigint NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS resource_audit (
    seq   bigserial PRIMARY KEY,
    key   text NOT NULL,
    value text NOT NULL,
    token bigint,
    op    text NOT NULL,
    tx    bigint NOT NULL DEFAULT txid_current()
);

CREATE OR REPLACE FUNCTION resource_audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO resource_audit (key, value, token, op) VALUES (NEW.key, NEW.value, NEW.token, TG_OP);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS resource_audit ON resource;
CREATE TRIGGER resource_audit AFTER INSERT OR UPDATE ON resource
    FOR EACH ROW EXECUTE FUNCTION resource_audit_row();
