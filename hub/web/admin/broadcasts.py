"""Broadcasts in the admin: a wizard (audience from a CSV, a segment built on the spot
over tags, a custom field, the CRM stage and the last message, with its live count, or
a saved audience; template and its variables, schedule and pacing, the pre-send
verdict, confirm), a live progress page (counts, rate, pause / resume / cancel) and the
results with their CSV export.

Every step goes through hub.broadcasts as the REST API does, so the same refusals name
the same fields; nothing is written before the last step but the audience uploaded or
built.
Admins and operators make and steer broadcasts; viewers read."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import func, select

from hub.broadcasts import audiences, lifecycle, pauses, results, schedule, segments, verdict
from hub.broadcasts.problems import BroadcastProblem
from hub.broadcasts.csv_upload import CsvProblem
from hub.channels import registry
from hub.channels.base import ChannelKind
from hub.platform.db import utcnow
from hub.models import (Audience, Broadcast, BroadcastRecipient, Channel, ContactCrmStage, ContactField, Message,
                        Template)
from hub.models.broadcasts import RECIPIENT_STATUSES
from hub.web.admin import bp, broadcast_pauses  # noqa: F401  (the progress page's pause_reason filter)
from hub.web.admin.auth import OPERATORS, roles
from hub.web.lookups import current_runtime, db, get_or_404

# What the wizard carries from step to step in hidden fields.
STATE = ("name", "channel_id", "template_id", "audience_id", "start_at", "timezone", "window_start", "window_end",
         "failure_threshold", "header")
RESULTS_PAGE = 200
# The segment builder's fields on the audience step.
SEGMENT_FORM = ("seg_tags", "seg_field_name", "seg_field_value", "seg_crm_stage", "seg_within_days")
# Why a recipient or a CSV row is skipped, as people read it (the data holds the keys).
SKIP_REASONS = {
    "opted_out": _l("opted out"), "no_marketing_consent": _l("no consent to marketing messages"),
    "missing_variables": _l("template variables missing"), "bad_number": _l("not a phone number"),
    "duplicate": _l("duplicate number"), "cancelled": _l("broadcast cancelled"),
}


# Template categories as the verdict's cost lines name them.
CATEGORY_TEXTS = [_l("marketing"), _l("utility"), _l("authentication"), _l("service")]


@bp.app_template_filter("skip_reason")
def skip_reason(value: Any) -> str:
    """A skip reason's label ("missing_variables: {{1}}" -> "template variables missing: {{1}}");
    a reason that is a sentence already (Meta's explanation) is translated as it is."""
    if value in (None, ""):
        return ""
    key, sep, rest = str(value).partition(": ")
    label = SKIP_REASONS.get(key)
    if label is None:
        return _(str(value))
    return f"{label}{sep}{rest}"


def segment_from_form(form: Any) -> dict[str, Any]:
    """The segment the audience step's builder describes ({} when it is left blank):
    tags (any of, comma-separated), a custom field (equal to a value, or set when the value
    is blank), a CRM stage ({"stage", "pipeline"} as JSON in the choice) and a last message
    within N days. Raises SegmentProblem naming the part, as the API does."""
    segment: dict[str, Any] = {}
    tags = [t.strip() for t in (form.get("seg_tags") or "").split(",") if t.strip()]
    if tags:
        segment["tags_any"] = tags
    name = (form.get("seg_field_name") or "").strip()
    value = form.get("seg_field_value") or ""
    if name:
        segment["field"] = {"name": name, **({"equals": value.strip()} if value.strip() else {})}
    elif value.strip():
        raise segments.SegmentProblem(_("field.name: choose the field the value is for"), field="field.name")
    stage = form.get("seg_crm_stage") or ""
    if stage:
        try:
            segment["crm_stage"] = json.loads(stage)
        except ValueError:
            raise segments.SegmentProblem(_("crm_stage: choose a stage from the list"), field="crm_stage") from None
    days = (form.get("seg_within_days") or "").strip()
    if days:
        if not days.isdigit() or len(days) > 5:
            raise segments.SegmentProblem(_("last_message_within_days: a whole number of days"),
                                          field="last_message_within_days")
        segment["last_message_within_days"] = int(days)
    return segment


def segment_choices(s: Any) -> dict[str, Any]:
    """What the segment builder offers: the custom fields contacts have and the CRM stages
    connectors reported ({"stage", "pipeline"} JSON, label)."""
    names = list(s.scalars(select(ContactField.name).distinct().order_by(ContactField.name).limit(200)))
    stages = []
    for pipeline, stage, stage_name in s.execute(
            select(ContactCrmStage.pipeline, ContactCrmStage.stage, ContactCrmStage.stage_name).distinct()
            .order_by(ContactCrmStage.pipeline, ContactCrmStage.stage_name, ContactCrmStage.stage).limit(200)):
        wanted = {"stage": stage, **({"pipeline": pipeline} if pipeline else {})}
        label = stage_name or stage
        stages.append((json.dumps(wanted, ensure_ascii=False), f"{label} · {pipeline}" if pipeline else label))
    return {"field_names": names, "crm_stages": stages}


def _stage_label(s: Any, wanted: dict[str, str]) -> str:
    """A stage chosen by its id with the name the connector gave it: "Won (142)"."""
    where = [ContactCrmStage.stage == wanted["stage"][:64]]
    if "pipeline" in wanted:
        where.append(ContactCrmStage.pipeline == wanted["pipeline"])
    name = s.scalar(select(ContactCrmStage.stage_name).where(*where, ContactCrmStage.stage_name != "").limit(1))
    return f"{name} ({wanted['stage']})" if name and name != wanted["stage"] else wanted["stage"]


def segment_lines(s: Any, segment: dict[str, Any]) -> list[str]:
    """A segment's filters in words, for the verdict."""
    lines = []
    for key, value in (segment or {}).items():
        if key == "channel_id":
            channel = s.get(Channel, value)
            lines.append(_("on channel %(name)s", name=channel.name if channel else f"#{value}"))
        elif key == "tag":
            lines.append(_("has the tag %(tag)s", tag=value))
        elif key == "tags_any":
            lines.append(_("has any of the tags %(tags)s", tags=", ".join(value)))
        elif key == "field":
            for c in value:
                lines.append(_("field %(name)s is %(value)s", name=c["name"], value=c["equals"]) if "equals" in c
                             else _("field %(name)s is set", name=c["name"]))
        elif key == "crm_stage":
            stage = _stage_label(s, value)
            lines.append(_("CRM stage %(stage)s in pipeline %(pipeline)s", stage=stage, pipeline=value["pipeline"])
                         if "pipeline" in value else _("CRM stage %(stage)s", stage=stage))
        elif key == "last_message_within_days":
            lines.append(_("wrote within the last %(n)s days", n=value))
        elif key == "last_message_older_than_days":
            lines.append(_("last wrote more than %(n)s days ago, or never", n=value))
        elif key == "name_contains":
            lines.append(_("name contains %(text)s", text=value))
        elif key == "phone_prefix":
            lines.append(_("number starts with %(prefix)s", prefix=value))
        else:  # lead_source, utm_source, utm_campaign
            lines.append(f"{key} = {value}")
    return lines or [_("every contact with a phone number")]


def variable_slots(template: Template, channel_kind: ChannelKind) -> list[str]:
    """The template's body variables as the wizard names them: "1", "2", ... or their names."""
    wanted = channel_kind.template_variables(template)
    return [str(i + 1) for i in range(wanted)] if isinstance(wanted, int) else list(wanted)


def sources_from_form(template: Template, form: Any, channel_kind: ChannelKind) -> Any:
    """The variables' sources from the wizard's fields var_<slot> ("column:x", "contact:name",
    "crm:stage_name", "value") and value_<slot>: a list for positional templates, an object
    for named ones."""
    def source(slot: str) -> dict[str, str]:
        choice = form.get(f"var_{slot}", "")
        kind, _sep, name = choice.partition(":")
        if kind in ("column", "contact", "crm") and name:
            return {kind: name}
        return {"value": form.get(f"value_{slot}", "")}

    slots = variable_slots(template, channel_kind)
    if isinstance(channel_kind.template_variables(template), int):
        return [source(slot) for slot in slots]
    return {slot: source(slot) for slot in slots}


def start_moment(text: str, zone: str) -> datetime | None:
    """A datetime-local value read in the broadcast's time zone, as UTC; None when blank."""
    if not text.strip():
        return None
    try:
        local = datetime.fromisoformat(text.strip())
        tz = ZoneInfo(zone or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        raise BroadcastProblem(_("start_at must be a date and time, in a known time zone"),
                                         field="start_at") from None
    return (local.replace(tzinfo=tz) if local.tzinfo is None else local).astimezone(ZoneInfo("UTC"))


def _when(state: dict[str, Any], days: list[int]) -> dict[str, Any]:
    """The schedule and pacing fields as lifecycle.create takes them, checked now so the
    verdict step already names a schedule in the past (nothing is written for it)."""
    try:
        threshold = float(state["failure_threshold"]) / 100
    except ValueError:
        raise BroadcastProblem(_("failure_threshold must be a percentage"), field="failure_threshold") from None
    when = {"start_at": start_moment(state["start_at"], state["timezone"]), "timezone": state["timezone"],
            "allowed_days": days, "window_start": state["window_start"], "window_end": state["window_end"],
            "failure_threshold": threshold}
    try:
        schedule.validate(start_at=when["start_at"], timezone=when["timezone"], allowed_days=days,
                          window_start=when["window_start"], window_end=when["window_end"], now=utcnow())
    except schedule.ScheduleProblem as exc:
        raise BroadcastProblem(str(exc), field=exc.field) from None
    if not 0 < threshold <= 1:
        raise BroadcastProblem(_("failure_threshold must be above 0 and at most 100 percent"), field="failure_threshold")
    return when


def _sends_templates(channel: Channel | None) -> bool:
    """A broadcast sends templates: only channels whose kind has them can carry one."""
    return channel is not None and registry.of(channel, current_runtime().config).capabilities.templates


def _choices(s: Any) -> dict[str, Any]:
    """The channels that can carry a broadcast and the templates their kinds let them send."""
    config = current_runtime().config
    channels = [c for c in s.scalars(select(Channel).order_by(Channel.id)) if _sends_templates(c)]
    usable = {t.id for c in channels for t in registry.of(c, config).usable_templates(s, c)}
    templates = list(s.scalars(select(Template).where(Template.id.in_(usable))
                               .order_by(Template.name, Template.language))) if usable else []
    saved = list(s.scalars(select(Audience).order_by(Audience.id.desc()).limit(100)))
    return {"channels": channels, "templates": templates, "audiences": saved}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@bp.get("/broadcasts")
def broadcasts() -> Any:
    with db().scope() as s:
        listed = list(s.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(200)))
        counts = {b.id: dict.fromkeys(RECIPIENT_STATUSES, 0) for b in listed}
        for broadcast_id, status, n in s.execute(
                select(BroadcastRecipient.broadcast_id, BroadcastRecipient.status, func.count())
                .where(BroadcastRecipient.broadcast_id.in_(list(counts)))
                .group_by(BroadcastRecipient.broadcast_id, BroadcastRecipient.status)):
            counts[broadcast_id][status] = n
        rows = [{"b": b, "counts": counts[b.id]} for b in listed]
    return render_template("admin/broadcasts.html", rows=rows)


@bp.route("/broadcasts/new", methods=["GET", "POST"])
@roles(*OPERATORS)
def broadcast_new() -> Any:
    form = request.form if request.method == "POST" else request.args
    step = form.get("step", "audience")
    state = {k: form.get(k, "") for k in STATE}
    state["timezone"] = state["timezone"] or "UTC"
    state["window_start"], state["window_end"] = state["window_start"] or "00:00", state["window_end"] or "24:00"
    state["failure_threshold"] = state["failure_threshold"] or "20"
    days = [d for d in (_int(v) for v in form.getlist("allowed_days")) if d] or list(range(1, 8))
    errors: list[str] = []
    with db().scope() as s:
        page: dict[str, Any] = {"state": state, "days": days, "errors": errors, **_choices(s), **segment_choices(s),
                                "seg": {k: form.get(k, "") for k in SEGMENT_FORM}}
        if request.method == "POST" and step == "audience":
            step = _audience_step(s, state, errors)
        template = s.get(Template, _int(state["template_id"])) if state["template_id"] else None
        audience = s.get(Audience, _int(state["audience_id"])) if state["audience_id"] else None
        page.update(template=template, audience=audience)
        # The chosen channel's kind reads its templates (none chosen: the registry's default kind).
        channel_id = _int(state["channel_id"])
        channel_kind = registry.of(s.get(Channel, channel_id) if channel_id else None, current_runtime().config)
        if template is not None:
            page["slots"] = variable_slots(template, channel_kind)
            page["body"] = channel_kind.template_text(template)
            page["chosen"] = {slot: form.get(f"var_{slot}", "") for slot in page["slots"]}
            page["values"] = {slot: form.get(f"value_{slot}", "") for slot in page["slots"]}
        if audience is not None:
            page["summary"] = audiences.summary(audience)
            page["refused_rows"] = list(audience.refused or [])[:20]
            if audience.kind == "segment":
                page["segment_lines"] = segment_lines(s, audience.segment or {})
                page["segment_count"] = segments.count(s, audience.segment or {}, now=utcnow())
        if step in ("verdict", "create") and (template is None or audience is None):
            errors.append(_("Choose a template and an audience first."))
            step = "audience"
        if step in ("verdict", "create"):
            spec = sources_from_form(template, form, channel_kind)
            header = state["header"] or None
            try:
                when = _when(state, days)
                page["verdict"] = verdict.for_composition(
                    s, config=current_runtime().config, channel_id=_int(state["channel_id"]) or 0,
                    audience_id=audience.id, template_name=template.name, template_language=template.language,
                    variables=spec, header=header, now=utcnow())
                if step == "create":
                    broadcast = lifecycle.create(
                        s, name=state["name"] or template.name, channel_id=_int(state["channel_id"]) or 0,
                        audience_id=audience.id, template_name=template.name, template_language=template.language,
                        variables=spec, header=header, **when, now=utcnow())
                    if form.get("launch") == "1":
                        lifecycle.start(s, broadcast.id, now=utcnow())
                    broadcast_id = broadcast.id
                    s.commit()
                    flash(_("Broadcast created."), "ok")
                    return redirect(url_for("admin.broadcast", broadcast_id=broadcast_id))
            except BroadcastProblem as exc:
                s.rollback()
                page.pop("verdict", None)
                errors.append(f"{exc.field}: {exc}")
                for row in exc.rows[:20]:
                    errors.append(_("row %(row)s (%(phone)s) lacks %(missing)s", row=row.get("row") or "—",
                                    phone=row.get("phone", ""), missing=", ".join(row.get("missing") or [])))
                step = "audience" if exc.field in ("channel_id", "audience_id", "template", "template_name") \
                    else "compose"
        page["step"] = step if step in ("audience", "compose", "verdict") else "compose"
        status = 422 if errors and request.method == "POST" else 200
        return render_template("admin/broadcast_new.html", **page), status


def _audience_step(s: Any, state: dict[str, Any], errors: list[str]) -> str:
    """Step one's answer: the channel, the template and the audience (uploaded now, or saved)."""
    channel = s.get(Channel, _int(state["channel_id"])) if state["channel_id"] else None
    template = s.get(Template, _int(state["template_id"])) if state["template_id"] else None
    if not _sends_templates(channel):
        errors.append(_("Choose a WhatsApp channel."))
    if template is None or (channel is not None and template.waba_id != channel.waba_id):
        errors.append(_("Choose an approved template of that channel's account."))
    upload = request.files.get("csv_file")
    if upload is not None and upload.filename:
        try:
            audience = audiences.create_from_csv(
                s, name=state["name"] or upload.filename, data=upload.read(),
                region=(request.form.get("region") or "").strip().upper() or None, now=utcnow())
        except CsvProblem as exc:
            errors.append(f"{exc.field}: {exc}")
            return "audience"
        if errors:
            s.rollback()
            return "audience"
        s.flush()
        state["audience_id"] = str(audience.id)
        s.commit()
    elif any((request.form.get(k) or "").strip() for k in SEGMENT_FORM):
        try:
            audience = audiences.create_segment(s, name=state["name"] or _("Segment"),
                                                segment=segment_from_form(request.form), now=utcnow())
        except segments.SegmentProblem as exc:
            s.rollback()
            errors.append(f"segment.{exc.field}: {exc}")
            return "audience"
        if errors:
            s.rollback()
            return "audience"
        state["audience_id"] = str(audience.id)
        s.commit()
    elif not state["audience_id"]:
        errors.append(_("Upload a CSV, build a segment or choose a saved audience."))
    return "audience" if errors else "compose"


@bp.get("/broadcasts/segment-count")
@roles(*OPERATORS)
def broadcast_segment_count() -> Any:
    """The segment builder's live count (polled by htmx as the fields change); writes nothing."""
    count, problem = None, None
    with db().scope() as s:
        try:
            segment = segment_from_form(request.args)
            if segment:
                count = segments.count(s, segments.check_known(s, segment), now=utcnow())
        except segments.SegmentProblem as exc:
            problem = f"segment.{exc.field}: {exc}"
    return render_template("admin/_segment_count.html", count=count, problem=problem)


def progress_of(s: Any, broadcast: Broadcast, *, now: datetime) -> dict[str, Any]:
    """Counts, how far it got and the rate over the last minute, for the live page."""
    counts = results.counts(s, broadcast.id)
    total = sum(counts.values())
    done = total - counts.get("pending", 0) - counts.get("queued", 0)
    rate = s.scalar(select(func.count()).select_from(BroadcastRecipient).join(
        Message, Message.id == BroadcastRecipient.message_id).where(
        BroadcastRecipient.broadcast_id == broadcast.id, Message.accepted_at >= now - timedelta(seconds=60))) or 0
    return {"counts": counts, "total": total, "done": done,
            "percent": round(100 * done / total) if total else 100, "per_minute": rate}


@bp.get("/broadcasts/<int:broadcast_id>")
def broadcast(broadcast_id: int) -> Any:
    with db().scope() as s:
        b = get_or_404(s, Broadcast, broadcast_id)
        return render_template("admin/broadcast.html", b=b, p=progress_of(s, b, now=utcnow()),
                               funnel=results.funnel(s, b))


@bp.get("/broadcasts/<int:broadcast_id>/progress")
def broadcast_progress(broadcast_id: int) -> Any:
    """The live part of the progress page, polled by htmx."""
    with db().scope() as s:
        b = get_or_404(s, Broadcast, broadcast_id)
        return render_template("admin/_broadcast_progress.html", b=b, p=progress_of(s, b, now=utcnow()))


ACTIONS = {
    "start": lambda s, i, now: lifecycle.start(s, i, now=now),
    "pause": lambda s, i, now: lifecycle.pause(s, i, pauses.by_hand(), now=now),
    "resume": lambda s, i, now: lifecycle.resume(s, i, now=now),
    "cancel": lambda s, i, now: lifecycle.cancel(s, i, now=now),
}


@bp.post("/broadcasts/<int:broadcast_id>/<any(start, pause, resume, cancel):action>")
@roles(*OPERATORS)
def broadcast_action(broadcast_id: int, action: str) -> Any:
    try:
        with db().scope() as s:
            get_or_404(s, Broadcast, broadcast_id)
            ACTIONS[action](s, broadcast_id, utcnow())
    except BroadcastProblem as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.broadcast", broadcast_id=broadcast_id))


@bp.post("/broadcasts/<int:broadcast_id>/retry-failed")
@roles(*OPERATORS)
def broadcast_retry(broadcast_id: int) -> Any:
    try:
        with db().scope() as s:
            retry = lifecycle.retry_failed(s, get_or_404(s, Broadcast, broadcast_id), now=utcnow())
            retry_id = retry.id
    except BroadcastProblem as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.broadcast_results", broadcast_id=broadcast_id))
    flash(_("A draft of the failures worth another try was made."), "ok")
    return redirect(url_for("admin.broadcast", broadcast_id=retry_id))


@bp.get("/broadcasts/<int:broadcast_id>/results")
def broadcast_results(broadcast_id: int) -> Any:
    status = request.args.get("status") or None
    if status not in (None, *RECIPIENT_STATUSES):
        abort(400, description="unknown status")
    offset = max(0, _int(request.args.get("offset")) or 0)
    with db().scope() as s:
        b = get_or_404(s, Broadcast, broadcast_id)
        rows = list(results.rows(s, b, status=status, limit=RESULTS_PAGE, offset=offset))
        return render_template("admin/broadcast_results.html", b=b, rows=rows, status=status, offset=offset,
                               page=RESULTS_PAGE, funnel=results.funnel(s, b), counts=results.counts(s, b.id),
                               refused=results.refused_rows(s, b)[:100], statuses=RECIPIENT_STATUSES)


@bp.get("/broadcasts/<int:broadcast_id>/results.csv")
def broadcast_results_csv(broadcast_id: int) -> Any:
    with db().scope() as s:
        text = results.export_csv(s, get_or_404(s, Broadcast, broadcast_id))
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="broadcast-{broadcast_id}.csv"'})
