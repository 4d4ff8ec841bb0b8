"""Messaging channels. Importing this registers their inbound webhook processors."""
from hub.channels.whatsapp import ingest  # noqa: F401
