"""What every channel kind's settings share: the refusal a form shows field by field,
and the channel's secrets, kept encrypted in the row (never shown or logged)."""
from __future__ import annotations

from typing import Any, Mapping

from hub.models import Channel
from hub.shared.security import Vault


class InvalidChannel(ValueError):
    """The settings were refused; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, Any]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}"
                                   for k, v in self.errors.items()))


def secrets_of(channel: Channel, vault: Vault) -> dict[str, str]:
    """The channel's secrets, decrypted."""
    return vault.decrypt(channel.secrets_enc)
