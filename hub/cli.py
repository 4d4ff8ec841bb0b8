"""The `hub` command."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from hub.platform.config import load_config
from hub.shared.config_errors import ConfigError
from hub.platform.db import utcnow


def _settings(path: str | None):
    """The settings with the checks the channels add for what they read: importing the
    WhatsApp rate card registers its check, so a bad card stops the command here."""
    import hub.channels.whatsapp.billing.rate_card  # noqa: F401

    return load_config(path)


def _runtime(ctx: click.Context):
    from hub.platform.runtime import Runtime, setup_logging

    if "runtime" not in ctx.obj:
        config = _settings(ctx.obj.get("config_path"))
        setup_logging(config)
        ctx.obj["runtime"] = Runtime.from_config(config)
    return ctx.obj["runtime"]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        click.echo("  ".join(v[:80].ljust(w) for v, w in zip(row, widths)))


@click.group()
@click.option("--config", "config_path", envvar="HUB_CONFIG", type=click.Path(dir_okay=False),
              help="TOML config file (default: $HUB_CONFIG, else built-in defaults).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """hub: WhatsApp conversations into your CRM."""
    from hub.wiring import install_reactions

    install_reactions()  # e.g. `hub webhooks replay` routes the chats it starts
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


# -- processes --------------------------------------------------------------------

@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Web server, a worker and the scheduler in one process (the embedded default)."""
    from hub.processes import run_web

    run_web(_runtime(ctx), with_background=True)


@cli.command()
@click.pass_context
def web(ctx: click.Context) -> None:
    """Only the web server (waitress); for scale-out prefer `gunicorn wsgi:app`."""
    from hub.processes import run_web

    run_web(_runtime(ctx), with_background=False)


@cli.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default: [worker] threads).")
@click.pass_context
def worker(ctx: click.Context, threads: int | None) -> None:
    """Deliver events to connectors."""
    from hub.processes import run_workers

    runtime = _runtime(ctx)
    run_workers(runtime, threads or runtime.config.worker.threads)


@cli.command()
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run scheduled jobs; several may run, one leads."""
    from hub.processes import run_scheduler

    run_scheduler(_runtime(ctx))


@cli.command()
@click.option("--crm", default="bitrix24", show_default=True,
              help="CRM emulator to connect (a connector kind with a benchkit), or 'none'.")
@click.option("--every", default=5.0, show_default=True, help="Seconds between customer messages.")
@click.option("--chat/--no-chat", default=True, show_default=True,
              help="Also show the chats inside the CRM (its chat page, where managers answer).")
@click.option("--channels", default="whatsapp", show_default=True,
              help="Emulated channels, comma-separated: whatsapp, telegram, instagram.")
@click.pass_context
def demo(ctx: click.Context, crm: str, every: float, chat: bool, channels: str) -> None:
    """Everything on this machine: emulated channels, an emulated CRM, chatty customers."""
    from hub.demo import CHANNELS, run
    from hub.platform.runtime import setup_logging

    kinds = tuple(k.strip() for k in channels.split(",") if k.strip())
    unknown = [k for k in kinds if k not in CHANNELS]
    if unknown or not kinds:
        raise click.BadParameter(f"choose from {', '.join(CHANNELS)} (not {', '.join(unknown) or 'nothing'})",
                                 param_hint="--channels")
    config = _settings(ctx.obj.get("config_path"))
    setup_logging(config)
    run(config, crm=None if crm == "none" else crm, every=every, chat=chat, channels=kinds)


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    from migrations.apply import current_revision, upgrade

    runtime = _runtime(ctx)
    import logging

    logging.getLogger("alembic").setLevel(logging.INFO)  # show each revision applied
    upgrade(runtime.config.database_url)
    click.echo(f"database at revision {current_revision(runtime.db.engine)}")


@cli.command()
def keygen() -> None:
    """Print a new Fernet key for encryption_keys."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


# -- users and tokens -------------------------------------------------------------------

@cli.group()
def user() -> None:
    """Admin, operator and viewer accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["admin", "operator", "viewer"]), default="admin", show_default=True)
@click.option("--name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for when not given.")
@click.pass_context
def user_create(ctx: click.Context, email: str, role: str, name: str, password: str) -> None:
    from hub.models.users import InvalidUser, create_user

    runtime = _runtime(ctx)
    try:
        with runtime.db.scope() as session:
            created = create_user(session, email=email, password=password, role=role, name=name, now=utcnow())
            click.echo(f"created {created.role} {created.email} (id {created.id})")
    except InvalidUser as exc:
        raise click.ClickException(str(exc)) from None


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    from hub.models import User

    with _runtime(ctx).db.scope() as session:
        rows = [{"id": u.id, "email": u.email, "role": u.role, "active": u.active, "created": u.created_at}
                for u in session.scalars(select(User).order_by(User.id))]
    _table(rows, ["id", "email", "role", "active", "created"])


@cli.group()
def token() -> None:
    """API tokens for /api/v1."""


@token.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="What the token is for.")
@click.pass_context
def token_create(ctx: click.Context, email: str, name: str) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from hub.models.users import InvalidUser, create_api_token

    runtime = _runtime(ctx)
    try:
        with runtime.db.scope() as session:
            plain = create_api_token(session, email=email, name=name, now=utcnow())
    except InvalidUser as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(plain)


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    from hub.models import ApiToken, User

    with _runtime(ctx).db.scope() as session:
        rows = [{"id": t.id, "prefix": t.prefix + "…", "name": t.name, "user": email,
                 "last_used": t.last_used_at, "revoked": t.revoked_at}
                for t, email in session.execute(select(ApiToken, User.email).join(User).order_by(ApiToken.id))]
    _table(rows, ["id", "prefix", "name", "user", "last_used", "revoked"])


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    from hub.models import ApiToken

    with _runtime(ctx).db.scope() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise click.ClickException(f"no API token with id {token_id}")
        row.revoked_at = row.revoked_at or utcnow()
    click.echo(f"revoked token {token_id}")


# -- connectors ----------------------------------------------------------------------

@cli.group()
def connector() -> None:
    """Configured connectors (CRMs, webhooks)."""


@connector.command("kinds")
def connector_kinds() -> None:
    """Installed connector kinds and their settings."""
    from connectors.base import registry
    from hub.crm.settings_form import describe_settings

    for kind, cls in registry.kinds().items():
        click.echo(f"{kind}: {cls.title}")
        for f in describe_settings(cls.Settings):
            flags = ", ".join(x for x in ("required" if f["required"] else "", "secret" if f["secret"] else "") if x)
            click.echo(f"  {f['name']} ({f['type']}{', ' + flags if flags else ''}): {f['label']}")


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use key=value", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@connector.command("add")
@click.option("--kind", required=True)
@click.option("--name", required=True)
@click.option("--set", "sets", multiple=True, help="A setting as key=value (JSON values allowed).")
@click.option("--events", default=None, help="Comma-separated event types (default: all).")
@click.option("--disabled", is_flag=True)
@click.pass_context
def connector_add(ctx: click.Context, kind: str, name: str, sets: tuple[str, ...],
                  events: str | None, disabled: bool) -> None:
    from connectors.base import UnknownConnectorKind
    from hub.crm.store import InvalidConnector, create_connector

    runtime = _runtime(ctx)
    try:
        with runtime.db.scope() as session:
            record = create_connector(
                session, runtime.vault, kind=kind, name=name, settings=_parse_sets(sets), now=utcnow(),
                enabled=not disabled, event_types=events.split(",") if events else None,
            )
            click.echo(f"added {kind} connector {record.name!r} (id {record.id})")
    except (UnknownConnectorKind, InvalidConnector) as exc:
        raise click.ClickException(str(exc)) from None


@connector.command("list")
@click.pass_context
def connector_list(ctx: click.Context) -> None:
    from hub.models import ConnectorRecord

    with _runtime(ctx).db.scope() as session:
        rows = [{"id": c.id, "kind": c.kind, "name": c.name, "enabled": c.enabled, "health": c.health,
                 "message": c.health_message}
                for c in session.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id))]
    _table(rows, ["id", "kind", "name", "enabled", "health", "message"])


@connector.command("check")
@click.argument("connector_id", type=int)
@click.pass_context
def connector_check(ctx: click.Context, connector_id: int) -> None:
    """Test the connection (the admin's "Test connection")."""
    from hub.crm.check import run_check

    try:
        result = run_check(_runtime(ctx), connector_id, now=utcnow())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(("ok: " if result.ok else "FAILED: ") + result.message)
    if not result.ok:
        sys.exit(1)


# -- deliveries ---------------------------------------------------------------------

@cli.group()
def deliveries() -> None:
    """The delivery log and dead letters."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "leased", "done", "dead"]))
@click.option("--connector", "connector_id", type=int)
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def deliveries_list(ctx: click.Context, status: str | None, connector_id: int | None, limit: int) -> None:
    from hub.delivery import queries

    with _runtime(ctx).db.scope() as session:
        rows = queries.list_deliveries(session, status=status, connector_id=connector_id, limit=limit)
    _table(rows, ["id", "connector", "event_type", "status", "attempts", "next_attempt_at", "last_error"])


@deliveries.command("show")
@click.argument("delivery_id", type=int)
@click.pass_context
def deliveries_show(ctx: click.Context, delivery_id: int) -> None:
    from hub.delivery import queries

    with _runtime(ctx).db.scope() as session:
        found = queries.show_delivery(session, delivery_id)
    if found is None:
        raise click.ClickException(f"no delivery with id {delivery_id}")
    click.echo(json.dumps(found, indent=2, default=_fmt, ensure_ascii=False))


@deliveries.command("replay")
@click.argument("delivery_ids", type=int, nargs=-1)
@click.option("--all-dead", is_flag=True, help="Replay every dead letter.")
@click.option("--connector", "connector_id", type=int, help="Only this connector's dead letters.")
@click.pass_context
def deliveries_replay(ctx: click.Context, delivery_ids: tuple[int, ...], all_dead: bool,
                      connector_id: int | None) -> None:
    """Put dead letters back in the queue."""
    from hub.delivery import ledger

    if not delivery_ids and not all_dead and not connector_id:
        raise click.UsageError("give delivery ids, --connector or --all-dead")
    with _runtime(ctx).db.scope() as session:
        count = ledger.replay(session, now=utcnow(), ids=list(delivery_ids) or None, connector_id=connector_id)
    click.echo(f"replayed {count} dead letter(s)")


# -- raw webhooks -----------------------------------------------------------------------

@cli.group()
def webhooks() -> None:
    """Raw inbound webhooks."""


@webhooks.command("list")
@click.option("--failed", is_flag=True, help="Only those that could not be processed.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def webhooks_list(ctx: click.Context, failed: bool, limit: int) -> None:
    from hub.models import RawWebhook

    with _runtime(ctx).db.scope() as session:
        query = select(RawWebhook).order_by(RawWebhook.id.desc()).limit(limit)
        if failed:
            query = query.where(RawWebhook.status == "failed")
        rows = [{"id": r.id, "source": r.source, "received": r.received_at, "status": r.status,
                 "attempts": r.attempts, "error": r.error} for r in session.scalars(query)]
    _table(rows, ["id", "source", "received", "status", "attempts", "error"])


@webhooks.command("replay")
@click.argument("webhook_ids", type=int, nargs=-1)
@click.pass_context
def webhooks_replay(ctx: click.Context, webhook_ids: tuple[int, ...]) -> None:
    """Process failed raw webhooks again (all failed ones when no id is given)."""
    import hub.channels  # noqa: F401  (registers the processors)
    from hub.events.raw_webhooks import replay

    result = replay(_runtime(ctx), now=utcnow(), ids=list(webhook_ids) or None)
    click.echo(f"processed {result['processed']}, still failing {result['failed']}")


# -- reports ----------------------------------------------------------------------------

@cli.group()
def reports() -> None:
    """Report figures."""


@reports.command("rebuild")
@click.pass_context
def reports_rebuild(ctx: click.Context) -> None:
    """Compute every conversation's report figures (report_facts) again."""
    from hub.reports import facts

    with _runtime(ctx).db.scope() as session:
        count = facts.rebuild(session, now=utcnow())
    click.echo(f"computed the figures of {count} conversation(s)")


# -- routing ----------------------------------------------------------------------------

@cli.group()
def routing() -> None:
    """Routing upkeep."""


@routing.command("recount")
@click.pass_context
def routing_recount(ctx: click.Context) -> None:
    """Count every operator's open conversations again and fix any counter that differs."""
    from hub.routing import counts

    with _runtime(ctx).db.scope() as session:
        fixed = counts.recount(session)
    for user_id, n in sorted(fixed.items()):
        click.echo(f"user {user_id}: {n} open conversation(s)")
    click.echo(f"fixed {len(fixed)} counter(s)")


def main() -> None:
    try:
        cli(obj={})
    except ConfigError as exc:
        click.echo(f"hub: {exc}", err=True)
        sys.exit(2)
