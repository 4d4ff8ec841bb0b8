"""Configuration: a TOML file (HUB_CONFIG) with HUB_* environment overrides.

Everything is validated at start-up so a typo stops the hub with a message naming the
key, instead of surfacing hours later in a worker. Nested keys are overridden with a
double underscore: HUB_WORKER__BATCH_SIZE=20 sets [worker] batch_size.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hub.shared.config_errors import ConfigError

ENV_PREFIX = "HUB_"


def _positive() -> validate.Range:
    return validate.Range(min=0, min_inclusive=False, error="must be greater than 0")


class _Section(Schema):
    class Meta:
        unknown = RAISE


class WebSchema(_Section):
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8000, validate=validate.Range(1, 65535))
    threads = fields.Integer(load_default=8, validate=validate.Range(1, 256))
    trusted_proxies = fields.Integer(load_default=0, validate=validate.Range(0, 10))
    allow_insecure = fields.Boolean(load_default=False)


class WorkerSchema(_Section):
    threads = fields.Integer(load_default=1, validate=validate.Range(1, 64))
    batch_size = fields.Integer(load_default=50, validate=validate.Range(1, 1000))
    lease_seconds = fields.Float(load_default=120.0, validate=_positive())
    poll_seconds = fields.Float(load_default=1.0, validate=_positive())


class DeliverySchema(_Section):
    max_age_seconds = fields.Float(load_default=3 * 24 * 3600.0, validate=_positive())
    backoff_base_seconds = fields.Float(load_default=5.0, validate=_positive())
    backoff_max_seconds = fields.Float(load_default=3600.0, validate=_positive())
    http_timeout_seconds = fields.Float(load_default=10.0, validate=_positive())


class SchedulerSchema(_Section):
    enabled = fields.Boolean(load_default=True)
    lease_seconds = fields.Float(load_default=30.0, validate=_positive())
    retention_days = fields.Integer(load_default=30, validate=validate.Range(min=1))
    pull_minutes = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1440))


class LogSchema(_Section):
    level = fields.String(
        load_default="INFO",
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]),
    )


class AdminSchema(_Section):
    session_minutes = fields.Integer(load_default=480, validate=validate.Range(5, 60 * 24 * 30))
    login_attempts = fields.Integer(load_default=5, validate=validate.Range(1, 1000))
    login_attempts_per_address = fields.Integer(load_default=10, validate=validate.Range(1, 10000))
    login_attempts_per_account = fields.Integer(load_default=10, validate=validate.Range(1, 10000))
    login_window_seconds = fields.Integer(load_default=300, validate=validate.Range(1, 24 * 3600))
    default_language = fields.String(load_default="en", validate=validate.OneOf(["en", "ru"]))
    closing_soon_minutes = fields.Integer(load_default=120, validate=validate.Range(1, 24 * 60))


# Checks a room above adds for a setting it reads, keyed by the setting's dotted name: a
# file the setting names, say, parsed and checked at start-up. The settings stay below
# every room that reads them, knowing none of them.
_setting_checks: dict[str, Callable[[Any], None]] = {}


def register_setting_check(key: str, check: Callable[[Any], None]) -> None:
    """`check(value)` raises ConfigError when the value of `key` (e.g. "whatsapp.rate_card")
    is unusable; load_config reports it under the key. Idempotent per key."""
    _setting_checks[key] = check


def _registered(key: str) -> Callable[[Any], None]:
    def validate_value(value: Any) -> None:
        check = _setting_checks.get(key)
        if check is None:
            return
        try:
            check(value)
        except ConfigError as exc:
            raise ValidationError(str(exc)) from None

    return validate_value


class WhatsAppSchema(_Section):
    rate_card = fields.String(load_default="", validate=_registered("whatsapp.rate_card"))
    graph_url = fields.Url(load_default="https://graph.facebook.com", require_tld=False)
    api_version = fields.String(load_default="v25.0", validate=validate.Regexp(
        r"^v\d+\.\d+$", error="must look like v25.0"))
    d360_url = fields.Url(load_default="https://waba-v2.360dialog.io", require_tld=False)
    d360_webhook_header = fields.String(load_default="X-Hub-Token")
    media_max_bytes = fields.Integer(load_default=25 * 1024 * 1024, validate=validate.Range(min=1024))
    template_sync_minutes = fields.Integer(load_default=60, validate=validate.Range(min=1))
    send_batch_size = fields.Integer(load_default=20, validate=validate.Range(1, 500))


class TrackingSchema(_Section):
    attribution_window_days = fields.Integer(load_default=7, validate=validate.Range(1, 365))
    ip_salt = fields.String(load_default="")
    visits_retention_days = fields.Integer(load_default=0, validate=validate.Range(min=0))


class RoutingSchema(_Section):
    # An operator online without a request for this long goes offline.
    presence_timeout_minutes = fields.Integer(load_default=15, validate=validate.Range(min=1, max=24 * 60))
    sweep_seconds = fields.Integer(load_default=30, validate=validate.Range(min=5, max=3600))


class ReportsSchema(_Section):
    # SMTP for scheduled reports by e-mail: "starttls" (port 587), "ssl" (465) or "none".
    smtp_host = fields.String(load_default="")
    smtp_port = fields.Integer(load_default=587, validate=validate.Range(1, 65535))
    smtp_security = fields.String(load_default="starttls", validate=validate.OneOf(["starttls", "ssl", "none"]))
    smtp_username = fields.String(load_default="")
    smtp_password = fields.String(load_default="")
    smtp_timeout_seconds = fields.Integer(load_default=30, validate=validate.Range(1, 600))
    from_address = fields.String(load_default="")
    check_seconds = fields.Integer(load_default=60, validate=validate.Range(10, 3600))
    # How long the signed export link of a report (e-mail, report.ready) stays valid.
    link_days = fields.Integer(load_default=7, validate=validate.Range(1, 366))


class BroadcastsSchema(_Section):
    # A customer message that is one of these words (any case, punctuation ignored)
    # opts them out of broadcasts, answered with stop_reply.
    stop_keywords = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                load_default=lambda: ["STOP", "СТОП", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"])
    stop_reply = fields.String(load_default="You are unsubscribed and will get no more mailings. "
                                            "Write START to subscribe again.")
    start_keywords = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                 load_default=lambda: ["START", "СТАРТ"])
    # On: a marketing broadcast sends only to contacts with a recorded marketing opt-in
    # (START, WhatsApp's "resume" button); the others are skipped as no_marketing_consent.
    require_marketing_opt_in = fields.Boolean(load_default=False)
    # How often sending broadcasts queue their next slice, and how far ahead (seconds).
    pacing_seconds = fields.Float(load_default=1.0, validate=validate.Range(min=0.05, max=60))


class ConfigSchema(_Section):
    mode = fields.String(
        load_default="development", validate=validate.OneOf(["development", "production"])
    )
    database_url = fields.String(load_default="sqlite:///var/hub.db")
    data_dir = fields.String(load_default="var")
    base_url = fields.Url(load_default="http://127.0.0.1:8000", require_tld=False)
    secret_key = fields.String(load_default="")
    encryption_keys = fields.String(load_default="")
    web = fields.Nested(WebSchema, load_default=lambda: WebSchema().load({}))
    worker = fields.Nested(WorkerSchema, load_default=lambda: WorkerSchema().load({}))
    delivery = fields.Nested(DeliverySchema, load_default=lambda: DeliverySchema().load({}))
    scheduler = fields.Nested(SchedulerSchema, load_default=lambda: SchedulerSchema().load({}))
    log = fields.Nested(LogSchema, load_default=lambda: LogSchema().load({}))
    whatsapp = fields.Nested(WhatsAppSchema, load_default=lambda: WhatsAppSchema().load({}))
    admin = fields.Nested(AdminSchema, load_default=lambda: AdminSchema().load({}))
    tracking = fields.Nested(TrackingSchema, load_default=lambda: TrackingSchema().load({}))
    routing = fields.Nested(RoutingSchema, load_default=lambda: RoutingSchema().load({}))
    reports = fields.Nested(ReportsSchema, load_default=lambda: ReportsSchema().load({}))
    broadcasts = fields.Nested(BroadcastsSchema, load_default=lambda: BroadcastsSchema().load({}))


class Config(Mapping[str, Any]):
    """Read-only, attribute-access view of validated settings."""

    def __init__(self, data: Mapping[str, Any]):
        self._data = MappingProxyType(
            {k: Config(v) if isinstance(v, Mapping) else v for k, v in data.items()}
        )

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def as_dict(self) -> dict[str, Any]:
        return {k: v.as_dict() if isinstance(v, Config) else v for k, v in self._data.items()}

    def replace(self, **changes: Any) -> "Config":
        """A copy with some top-level or dotted keys changed (used by tests and CLI flags)."""
        data = self.as_dict()
        for dotted, value in changes.items():
            *parents, leaf = dotted.split("__")
            node = data
            for part in parents:
                node = node[part]
            node[leaf] = value
        return load_config(data=data, environ={})


def _flatten_errors(errors: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten_errors(value, path))
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        out.append(f"{prefix}: {' '.join(errors)}")
    else:
        out.append(f"{prefix}: {errors}")
    return out


def _merge_environ(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        if name.startswith(ENV_PREFIX + "TEST_"):
            continue  # test-suite switches, not settings
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load settings from `data`, else the TOML file at `path` or $HUB_CONFIG, then
    apply HUB_* overrides from `environ` (default: os.environ)."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = dict(data or {})
    if data is None:
        path = path or environ.get(ENV_PREFIX + "CONFIG")
        if path:
            file = Path(path)
            try:
                raw = tomllib.loads(file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"config file {file} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    raw = _merge_environ(raw, environ)
    try:
        loaded = ConfigSchema().load(raw)
    except ValidationError as exc:
        problems = "; ".join(_flatten_errors(exc.messages))
        raise ConfigError(f"invalid configuration: {problems}") from None
    return Config(loaded)
