"""The error every settings check raises, in the lowest room so that the rooms that check
their own settings (the rate card, secrets, tracked links) need not import the settings
loader that calls them."""
from __future__ import annotations


class ConfigError(Exception):
    """Raised with a message naming the offending key."""
