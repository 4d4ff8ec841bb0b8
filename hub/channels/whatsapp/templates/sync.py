"""Template sync from each WhatsApp Business Account: on a schedule and on demand."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from hub.channels.whatsapp.templates import parameters as tpl
from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.outbound.client import WhatsAppClient
from hub.channels.whatsapp.errors import WhatsAppError, classify
from hub.platform.db import claim_request
from hub.shared.http import TimeoutSession
from hub.models import Channel
from hub.platform.runtime import Runtime
from hub.jobs.scheduler import JobSpec, register_job

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


def request_sync(runtime: Runtime, now: datetime) -> int:
    """The scheduled job: ask for one sync per account (a worker does it)."""
    with runtime.db.scope() as session:
        channels = list(session.scalars(select(Channel).where(Channel.kind == "whatsapp").order_by(Channel.id)))
        accounts: set[str] = set()
        asked = 0
        for channel in channels:
            account = channel.waba_id or channel.phone_number_id
            if account in accounts or channel.templates_sync_requested_at is not None:
                continue
            accounts.add(account)
            channel.templates_sync_requested_at = now
            asked += 1
    return asked


class TemplateSyncer:
    """A worker source: takes one requested sync per round and runs it."""

    def __init__(self, runtime: Runtime, *, clock=None):
        from hub.platform.db import utcnow

        self.runtime = runtime
        self.clock = clock or utcnow

    def _claim(self) -> int | None:
        with self.runtime.db.scope() as session:
            channel = claim_request(session, Channel, Channel.templates_sync_requested_at)
            return channel.id if channel is not None else None

    def run_once(self) -> int:
        channel_id = self._claim()
        if channel_id is None:
            return 0
        try:
            sync_channel(self.runtime, channel_id, now=self.clock())
        except (WhatsAppError, LookupError) as exc:
            log.warning("template sync of channel %s failed: %s", channel_id, exc)
        return 1


register_job(JobSpec("whatsapp_template_sync", request_sync, "interval",
                     lambda config: {"minutes": config.whatsapp.template_sync_minutes}))
