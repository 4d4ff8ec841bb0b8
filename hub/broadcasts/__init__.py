"""Broadcasts: consent, audiences, composition and the pre-send verdict, pacing under
WhatsApp's limits, auto-pause, results (docs/broadcasts.md)."""
