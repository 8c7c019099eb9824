"""splitbrain.truth against a real Postgres: a snapshot sees one committed state, and writing()
sees a transaction that has written and not yet committed."""
import psycopg

from splitbrain.truth import MOMENT_S, snapshot, writing


def test_a_snapshot_sees_one_state_and_writing_sees_an_open_write(ns):
    url = ns.pg_admin_url
    with psycopg.connect(url, autocommit=True) as reader, \
            psycopg.connect(url, autocommit=True) as probe, \
            psycopg.connect(url, autocommit=True) as component:
        reader.execute("CREATE TABLE IF NOT EXISTS truth_a (n int); "
                       "CREATE TABLE IF NOT EXISTS truth_b (n int)")
        assert not writing(probe)
        with snapshot(reader) as c:
            assert c.execute("SELECT count(*) FROM truth_a").fetchone()[0] == 0
            with component.transaction():             # a COMMIT between the two reads
                component.execute("INSERT INTO truth_a VALUES (1)")
                assert writing(probe)                 # written, not committed: not settled
                component.execute("INSERT INTO truth_b VALUES (1)")
            assert c.execute("SELECT count(*) FROM truth_b").fetchone()[0] == 0
        assert not writing(probe)
        assert reader.execute("SELECT count(*) FROM truth_b").fetchone()[0] == 1
    assert MOMENT_S >= 5
