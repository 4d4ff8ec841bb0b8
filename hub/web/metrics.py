"""Prometheus metrics read from the database at scrape time, so every process (and
every gunicorn worker) reports the same numbers."""
from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from hub.platform.db import Database, utcnow
from hub.models import ConnectorRecord, Delivery, RawWebhook


class HubCollector:
    def __init__(self, db: Database):
        self.db = db

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        by_status = GaugeMetricFamily(
            "hub_deliveries", "Deliveries by connector and status", labels=["connector", "status"]
        )
        age = GaugeMetricFamily(
            "hub_queue_age_seconds",
            "Age of the oldest delivery not yet done, per connector",
            labels=["connector"],
        )
        raw = GaugeMetricFamily("hub_raw_webhooks", "Raw inbound webhooks by status", labels=["status"])
        with self.db.scope() as session:
            names = dict(session.execute(select(ConnectorRecord.id, ConnectorRecord.name)).all())
            for connector_id, status, count in session.execute(
                select(Delivery.connector_id, Delivery.status, func.count())
                .group_by(Delivery.connector_id, Delivery.status)
            ):
                by_status.add_metric([names.get(connector_id, str(connector_id)), status], count)
            for connector_id, oldest in session.execute(
                select(Delivery.connector_id, func.min(Delivery.created_at))
                .where(Delivery.status.in_(("pending", "leased")))
                .group_by(Delivery.connector_id)
            ):
                if oldest is not None:
                    age.add_metric([names.get(connector_id, str(connector_id))],
                                   max(0.0, (now - oldest).total_seconds()))
            for status, count in session.execute(
                select(RawWebhook.status, func.count()).group_by(RawWebhook.status)
            ):
                raw.add_metric([status], count)
        yield by_status
        yield age
        yield raw


def make_registry(db: Database) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(db))
    return registry
