"""Shared leaves: HTTP, secrets and signatures, phones, rate limits, text templates, media links, backoff. The only part of the hub the connectors import."""
