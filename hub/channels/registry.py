"""Channel kinds by name. A channel row names its kind; every row so far is WhatsApp
(Cloud API or a 360dialog relay), so a row without one is read as WhatsApp."""
from __future__ import annotations

from typing import Any

from hub.channels.base import ChannelKind

DEFAULT_KIND = "whatsapp"
_KINDS: dict[str, type[ChannelKind]] = {}


def register(cls: type[ChannelKind]) -> type[ChannelKind]:
    """Class decorator of a channel kind."""
    _KINDS[cls.kind] = cls
    return cls


def names() -> list[str]:
    _load()
    return sorted(_KINDS)


def get(name: str, config: Any = None) -> ChannelKind:
    """The kind called `name`, with the settings of `config` (defaults without one)."""
    _load()
    try:
        cls = _KINDS[name]
    except KeyError:
        raise LookupError(f"no channel kind {name!r} (known: {', '.join(sorted(_KINDS))})") from None
    return cls(config)


def of(channel: Any, config: Any = None) -> ChannelKind:
    """The kind of a channel row (or of anything with an optional `kind`)."""
    return get(getattr(channel, "kind", None) or DEFAULT_KIND, config)


def every(config: Any = None) -> list[ChannelKind]:
    return [get(name, config) for name in names()]


def _load() -> None:
    if not _KINDS:
        import hub.channels  # noqa: F401  (each channel package registers its kind)
