"""Signed, expiring links to a report run's export, for the people a report goes to
(an e-mail's reader, a webhook's consumer) who have no API token or login. The scheme
is hub.shared.media_links': the link names one run and an expiry and is signed (HMAC-SHA256)
with a key derived from the hub's secret key, under its own label so a media link's
signature never opens an export. The run holds the period and filters, so nothing
in the URL but the run id can be chosen."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.shared.security import constant_time_equal, hmac_sha256_hex


@dataclass(frozen=True)
class ExportLinks:
    base_url: str
    secret_key: str
    lifetime: timedelta = timedelta(days=7)

    @classmethod
    def from_runtime(cls, runtime) -> "ExportLinks":
        from hub.shared.security import load_secret_key

        config = runtime.config
        return cls(config.base_url, load_secret_key(config), timedelta(days=config.reports.link_days))

    def _signature(self, run_id: int, expires: int) -> str:
        key = hashlib.sha256(b"hub report exports\0" + self.secret_key.encode()).digest()
        return hmac_sha256_hex(key, f"{run_id}.{expires}".encode())

    def expiry(self, now: datetime) -> datetime:
        return datetime.fromtimestamp(int((now + self.lifetime).timestamp()), tz=now.tzinfo)

    def url(self, run_id: int, *, now: datetime) -> str:
        expires = int(self.expiry(now).timestamp())
        return (f"{self.base_url.rstrip('/')}/reports/exports/{run_id}.csv"
                f"?expires={expires}&signature={self._signature(run_id, expires)}")

    def check(self, run_id: int, expires: str, signature: str, *, now: datetime) -> str | None:
        """Why the link may not be used, or None when it may."""
        if not expires.isdigit() or not signature:
            return "This link to a report's export is incomplete: use the whole link from the report."
        if not constant_time_equal(self._signature(run_id, int(expires)), signature):
            return "This link to a report's export is not valid: its signature does not match."
        if int(expires) < now.timestamp():
            return ("This link to a report's export has expired; download the export in the hub's admin "
                    "(Reports), or ask for the report to be sent again.")
        return None
