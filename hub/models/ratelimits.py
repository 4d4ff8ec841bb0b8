"""Shared token buckets, so every worker of a connector together stays under the
outside service's rate limit."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, UTCDateTime


class RateBucket(Base):
    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
