"""Messaging channels; importing this registers their inbound webhook processors."""
