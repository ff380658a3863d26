"""The creation answers are built from what was just written (no read-back after the commit,
bench/orders.py): they must equal what reading the records back answers."""

from tests.test_orders_http import call, client, intake_body, world  # noqa: F401


async def test_answers_equal_the_read_back(client, world):  # type: ignore[no-untyped-def]  # noqa: F811
    """POST /api/intakes (+ order) and POST /api/orders against GET of the same records."""
    w = world
    created = await call(client, "POST", "/api/intakes", w.as_("agent"),
                         intake_body(w, create_order={"address_id": w.address}), status=201)
    got_i = await call(client, "GET", f"/api/intakes/{created['intake']['id']}", w.as_("agent"))
    assert created["intake"] == got_i
    got_o = await call(client, "GET", f"/api/orders/{created['order']['id']}", w.as_("agent"))
    assert created["order"] == got_o["order"]
    created = await call(client, "POST", "/api/intakes", w.as_("agent"), intake_body(w, linkedid=""), status=201)
    d = await call(client, "POST", "/api/orders", w.as_("agent"),
                   {"intake_id": created["intake"]["id"], "address_id": w.address}, status=201)
    got = await call(client, "GET", f"/api/orders/{d['order']['id']}", w.as_("agent"))
    assert d == got
