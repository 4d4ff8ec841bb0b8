"""Messaging channels, each on the contract in base.py. Importing this registers their
kinds (registry.py), webhook processors and scheduled jobs."""
from hub.channels.whatsapp.inbound import ingest  # noqa: F401
from hub.channels.whatsapp import kind
from hub.channels.whatsapp.templates import sync as template_sync
from hub.channels.telegram import ingest as telegram_ingest, kind as telegram_kind  # noqa: F401
from hub.channels.instagram import ingest as instagram_ingest, kind as instagram_kind  # noqa: F401
