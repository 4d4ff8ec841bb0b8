"""Lead-source tracking: tracked links, their visits, and which conversation each led to."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, UTCDateTime
from hub.models._types import BigId, created_at, updated_at


class TrackedLink(Base):
    """A wa.me link the hub hands out through /l/<slug>: every visit gets its own code,
    which rides inside the prefilled first message back to the hub."""

    __tablename__ = "tracked_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    campaign: Mapped[str] = mapped_column(String(200), default="")
    # Prefilled first message; "{code}" is replaced with the visit's (or the static) code.
    text_template: Mapped[str] = mapped_column(Text)
    # Defaults for visits whose URL carries no UTM tags (and for static-code leads).
    utm_source: Mapped[str] = mapped_column(String(255), default="")
    utm_medium: Mapped[str] = mapped_column(String(255), default="")
    utm_campaign: Mapped[str] = mapped_column(String(255), default="")
    utm_content: Mapped[str] = mapped_column(String(255), default="")
    utm_term: Mapped[str] = mapped_column(String(255), default="")
    # QR codes and offline ads: one fixed code, printed, matched any number of times.
    static_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Visit(Base):
    """One click on /l/<slug>: where the visitor came from, and the code it was given."""

    __tablename__ = "tracking_visits"
    __table_args__ = (Index("ix_tracking_visits_link_visited", "link_id", "visited_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("tracked_links.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    # The code while it can still be matched: unique, so no two waiting visits share one;
    # set to NULL by the (conditional) UPDATE that matches it, or when a new visit needs
    # the code of an expired one.
    live_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    gclid: Mapped[str | None] = mapped_column(String(255))
    yclid: Mapped[str | None] = mapped_column(String(255))
    fbclid: Mapped[str | None] = mapped_column(String(255))
    ga_client_id: Mapped[str | None] = mapped_column(String(128))  # from the _ga cookie
    ym_uid: Mapped[str | None] = mapped_column(String(64))  # the _ym_uid cookie
    roistat_visit: Mapped[str | None] = mapped_column(String(32))  # the roistat_visit cookie (a visit number)
    referrer: Mapped[str | None] = mapped_column(Text)
    landing_page: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
    # HMAC of the address with a secret salt: repeat visitors show, the address never does.
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LeadAttribution(Base):
    """A conversation started through a tracked link (a visit's code or a static code).

    Unique on the conversation and on the visit: a code is never credited twice."""

    __tablename__ = "lead_attributions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("tracked_links.id", ondelete="SET NULL"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("tracking_visits.id", ondelete="SET NULL"), unique=True)
    code: Mapped[str] = mapped_column(String(16))
    attributed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
