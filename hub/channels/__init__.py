"""Messaging channels. Importing this registers their webhook processors and jobs."""
from hub.channels.whatsapp import ingest, template_sync  # noqa: F401
