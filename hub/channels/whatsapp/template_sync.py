"""Template sync from each WhatsApp Business Account: on a schedule and on demand."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from hub.channels.whatsapp import templates as tpl
from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.client import WhatsAppClient
from hub.channels.whatsapp.errors import WhatsAppError, classify
from hub.http import TimeoutSession
from hub.models import Channel
from hub.runtime import Runtime
from hub.scheduler import JobSpec, register_job

log = logging.getLogger(__name__)


def sync_channel(runtime: Runtime, channel_id: int, *, now: datetime) -> dict[str, int]:
    """Fetch every template page first (no transaction open), then store them in one."""
    with runtime.db.scope() as session:
        channel = session.get(Channel, channel_id)
        if channel is None:
            raise LookupError(f"no channel with id {channel_id}")
        session.expunge(channel)
    client = WhatsAppClient(endpoint(channel, runtime.vault, runtime.config),
                            TimeoutSession(runtime.config.delivery.http_timeout_seconds))
    try:
        items = list(client.templates())
    except WhatsAppError as exc:
        if classify(exc) == "token":
            with runtime.db.scope() as session:
                fresh = session.get(Channel, channel_id)
                fresh.health, fresh.health_message = "unhealthy", f"the access token was refused: {exc}"
        raise
    waba = channel.waba_id or channel.phone_number_id  # 360dialog: templates belong to the number's account
    with runtime.db.scope() as session:
        seen = set()
        for item in items:
            if not item.get("name") or not item.get("language"):
                continue
            tpl.upsert_synced(session, waba, item, now)
            seen.add((item["name"], item["language"]))
        stored = session.scalars(select(tpl.Template).where(tpl.Template.waba_id == waba))
        gone = 0
        for template in stored:
            if (template.name, template.language) not in seen and template.status != "DELETED":
                template.status, template.updated_at = "DELETED", now
                gone += 1
        fresh = session.get(Channel, channel_id)
        fresh.templates_synced_at = now
        if fresh.health != "ok":
            fresh.health, fresh.health_message = "ok", ""
    return {"templates": len(seen), "marked_deleted": gone}


def _sync_all(runtime: Runtime, now: datetime) -> None:
    with runtime.db.scope() as session:
        ids = list(session.scalars(select(Channel.id).order_by(Channel.id)))
    done_accounts: set[str] = set()
    for channel_id in ids:
        with runtime.db.scope() as session:
            channel = session.get(Channel, channel_id)
            account = channel.waba_id or channel.phone_number_id
        if account in done_accounts:
            continue
        done_accounts.add(account)
        try:
            sync_channel(runtime, channel_id, now=now)
        except (WhatsAppError, LookupError) as exc:
            log.warning("template sync of channel %s failed: %s", channel_id, exc)


register_job(JobSpec("whatsapp_template_sync", _sync_all, "interval",
                     lambda config: {"minutes": config.whatsapp.template_sync_minutes}))
