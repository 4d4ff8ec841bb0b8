"""The baseline of bench/ingest.py: bare Flask endpoints that check the request is the
channel's (Meta's signature for WhatsApp and Instagram, the bot's secret token for
Telegram) and insert the raw body, nothing else. Served by gunicorn exactly like the hub."""
from __future__ import annotations

import hmac
import os
from datetime import datetime, timezone

from flask import Flask, request
from sqlalchemy import create_engine, text

from hub.channels.meta_signature import verify_meta_signature

APP_SECRET = os.environ["BENCH_APP_SECRET"]
SECRET_TOKEN = os.environ.get("BENCH_SECRET_TOKEN", "")
engine = create_engine(os.environ["HUB_DATABASE_URL"], pool_size=4)
app = Flask(__name__)

INSERT = text("INSERT INTO raw_webhooks (source, received_at, headers, body, status, attempts) "
              "VALUES ('baseline', :at, '{}', :body, 'processed', 1)")


@app.post("/webhooks/whatsapp/<key>")
@app.post("/webhooks/instagram/<key>")
def receive(key: str):
    body = request.get_data()
    if not verify_meta_signature(APP_SECRET, body, request.headers.get("X-Hub-Signature-256")):
        return "bad signature", 401
    return _insert(body)


@app.post("/webhooks/telegram/<key>")
def receive_update(key: str):
    token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not SECRET_TOKEN or not hmac.compare_digest(token.encode(), SECRET_TOKEN.encode()):
        return "secret token does not match", 403
    return _insert(request.get_data())


def _insert(body: bytes):
    with engine.begin() as conn:
        conn.execute(INSERT, {"at": datetime.now(timezone.utc), "body": body})
    return "ok", 200
