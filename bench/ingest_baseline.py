"""The baseline of bench/ingest.py: a bare Flask endpoint that checks the Meta signature
and inserts the raw body, nothing else. Served by gunicorn exactly like the hub."""
from __future__ import annotations

import os
from datetime import datetime, timezone

from flask import Flask, request
from sqlalchemy import create_engine, text

from hub.channels.whatsapp.signature import verify_meta_signature

APP_SECRET = os.environ["BENCH_APP_SECRET"]
engine = create_engine(os.environ["HUB_DATABASE_URL"], pool_size=4)
app = Flask(__name__)

INSERT = text("INSERT INTO raw_webhooks (source, received_at, headers, body, status, attempts) "
              "VALUES ('baseline', :at, '{}', :body, 'processed', 1)")


@app.post("/webhooks/whatsapp/<key>")
def receive(key: str):
    body = request.get_data()
    if not verify_meta_signature(APP_SECRET, body, request.headers.get("X-Hub-Signature-256")):
        return "bad signature", 401
    with engine.begin() as conn:
        conn.execute(INSERT, {"at": datetime.now(timezone.utc), "body": body})
    return "ok", 200
