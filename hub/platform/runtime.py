"""What every hub process shares: validated config, the database and the vault."""
from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.platform.config import Config, load_config
from hub.platform.db import Database
from hub.platform.logs import redact_handlers
from hub.shared.security import Vault, load_vault

if TYPE_CHECKING:
    from hub.shared.media_links import MediaLinks


def worker_id() -> str:
    """This process (and one of its workers): the owner of the claims and leases it takes."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runtime:
    config: Config
    db: Database
    vault: Vault

    @classmethod
    def from_config(cls, config: Config | None = None) -> "Runtime":
        config = config or load_config()
        vault = load_vault(config)  # fails early and clearly when the key is missing
        # Statement parameters are customer data: shown in errors only at debug level.
        db = Database(config.database_url, hide_parameters=config.log.level != "DEBUG")
        return cls(config=config, db=db, vault=vault)

    @functools.cached_property
    def media_links(self) -> "MediaLinks":
        """Signs media links in every inbound message's event: read the key once."""
        from hub.shared.media_links import MediaLinks

        return MediaLinks.from_runtime(self)


def setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, config.log.level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if config.log.level != "DEBUG":
        redact_handlers()
    # requests/urllib3 log full URLs at DEBUG, which can carry tokens in query strings.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # Library chatter (job added, plugin set up) is not news at INFO.
    for name in ("alembic", "apscheduler"):
        logging.getLogger(name).setLevel(max(logging.WARNING, getattr(logging, config.log.level)))
