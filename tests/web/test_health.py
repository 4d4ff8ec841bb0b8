from sqlalchemy import text

from hub.platform.db import utcnow
from hub.events.outbox import emit
from tests.support.factories import webhook_connector


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "ok"


def test_readyz_reports_an_outdated_schema(client, runtime):
    with runtime.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    r = client.get("/readyz")
    assert r.status_code == 503 and "hub migrate" in r.json["problem"]


def test_metrics_show_deliveries_and_queue_age(client, runtime):
    webhook_connector(runtime, "http://127.0.0.1:1/", name="crm-a")
    with runtime.db.scope() as session:
        emit(session, "message.received", {}, now=utcnow())
    body = client.get("/metrics").get_data(as_text=True)
    assert 'hub_deliveries{connector="crm-a",status="pending"} 1.0' in body
    assert 'hub_queue_age_seconds{connector="crm-a"}' in body


def test_home_page_leads_to_setup_then_to_the_admin(client, admin_headers):
    # admin_headers made a user: first-run setup is over, so / opens the admin
    assert client.get("/").headers["Location"] == "/admin/"
