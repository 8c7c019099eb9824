"""``rig.db.webhook_ids``: which provider ids a statement carries, so the record crash points fire
on the commit that records a delivery, wherever and however the receiver stores its id."""
from psycopg.types.json import Jsonb
from rig.db import webhook_ids


def test_an_id_in_the_parameters_or_the_text_is_found():
    assert webhook_ids("INSERT INTO inbox (id) VALUES (%s)", ("evt_ord_1_2",)) == {"evt_ord_1_2"}
    assert webhook_ids("INSERT INTO seen VALUES ('evt_ord_3_1')") == {"evt_ord_3_1"}
    assert webhook_ids("INSERT INTO inbox (id) VALUES (%(id)s)", {"id": "evt_ord_1_2"}) == \
        {"evt_ord_1_2"}


def test_an_id_inside_a_json_payload_is_found():
    assert webhook_ids("INSERT INTO inbox (body) VALUES (%s)",
                       ('{"id": "evt_ord_2_3", "type": "order.shipped"}',)) == {"evt_ord_2_3"}
    assert webhook_ids("INSERT INTO inbox (body) VALUES (%s)",
                       (Jsonb({"id": "evt_ord_2_3"}),)) == {"evt_ord_2_3"}


def test_a_statement_about_orders_only_carries_no_id():
    assert webhook_ids("INSERT INTO orders (id, status) VALUES (%s, %s)",
                       ("ord_1", "shipped")) == set()
    assert webhook_ids("SELECT 1") == set()
