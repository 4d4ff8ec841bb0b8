"""The hub-side store of links between hub entities and CRM objects."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.db import Database, utcnow
from hub.models import CrmLink


class DbLinkStore:
    """Each call is its own short transaction: a connector calls it between HTTP
    requests, and a link must be durable the moment the CRM object exists."""

    def __init__(self, db: Database, connector_id: int):
        self.db = db
        self.connector_id = connector_id

    def get(self, entity_type: str, entity_id: str) -> str | None:
        return self.get_many(entity_type, [entity_id]).get(str(entity_id))

    def get_many(self, entity_type: str, entity_ids: list[str]) -> dict[str, str]:
        ids = [str(i) for i in entity_ids]
        if not ids:
            return {}
        with self.db.scope() as session:
            rows = session.execute(
                select(CrmLink.entity_id, CrmLink.crm_id).where(
                    CrmLink.connector_id == self.connector_id,
                    CrmLink.entity_type == entity_type,
                    CrmLink.entity_id.in_(ids),
                )
            ).all()
        return {entity_id: crm_id for entity_id, crm_id in rows}

    def put(self, entity_type: str, entity_id: str, crm_type: str, crm_id: str) -> str:
        try:
            with self.db.scope() as session:
                session.add(
                    CrmLink(
                        connector_id=self.connector_id,
                        entity_type=entity_type,
                        entity_id=str(entity_id),
                        crm_type=crm_type,
                        crm_id=str(crm_id),
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            existing = self.get(entity_type, entity_id)
            if existing is None:
                raise
            return existing
        return str(crm_id)
