"""Changes Meta reports by webhook rather than in an API answer: template status,
quality and category, phone-number quality, messaging limit and throughput, and any
other account-level field. Each method changes the emulator's state and queues the
webhook; WABA-level fields go to the app's URL, here the WABA's first number with one.
"""
from __future__ import annotations

from typing import Any

from hub.channels.whatsapp.emulator.state import TEMPLATE_STATUSES, Number, Template
from hub.channels.whatsapp.emulator.webhooks import Update, epoch, template_status_value


class AccountEvents:
    """Mixed into WhatsAppEmulator; uses its numbers, templates, lock, clock and driver."""

    def _waba_number(self, waba_id: str) -> Number:
        """WABA-level events go to the app's URL: here the first number of the WABA that
        has a webhook URL."""
        numbers = [n for n in self.numbers.values() if n.waba_id == waba_id]
        if not numbers:
            raise KeyError(f"no number registered for WABA {waba_id}")
        return next((n for n in numbers if n.webhook_url), numbers[0])

    def emit_change(self, waba_id: str, field: str, value: dict[str, Any], *,
                    number: Number | None = None) -> Update:
        """Queue any non-messages change (account_update, account_alerts, ...)."""
        upd = Update(number or self._waba_number(waba_id), field, "value", value,
                     time=epoch(self.clock()))
        self.driver.enqueue([upd])
        return upd

    def set_template_status(self, template: Template | str, status: str, *,
                            reason: str | None = "NONE", **extra: Any) -> Update:
        """Change a template's status and queue message_template_status_update; extra
        keys (rejection_info, disable_info, other_info) go into the value as given."""
        if status not in TEMPLATE_STATUSES:
            raise ValueError(f"unknown template status {status!r}")
        with self.lock:
            tpl = template if isinstance(template, Template) else self.templates[template]
            tpl.status = status
            if status == "REJECTED":
                tpl.rejected_reason = reason or "NONE"
        value = template_status_value(tpl.id, tpl.name, tpl.language, status, category=tpl.category,
                                      reason=reason, extra=extra)
        return self.emit_change(tpl.waba_id, "message_template_status_update", value)

    def set_template_quality(self, template: Template, score: str) -> Update:
        previous, template.quality_score = template.quality_score, score
        return self.emit_change(template.waba_id, "message_template_quality_update", {
            "previous_quality_score": previous, "new_quality_score": score,
            "message_template_id": int(template.id), "message_template_name": template.name,
            "message_template_language": template.language})

    def set_template_category(self, template: Template, category: str) -> Update:
        previous, template.category = template.category, category.upper()
        return self.emit_change(template.waba_id, "template_category_update", {
            "message_template_id": int(template.id), "message_template_name": template.name,
            "message_template_language": template.language, "previous_category": previous,
            "new_category": template.category})

    def set_quality(self, number: Number, rating: str) -> Update | None:
        """Quality GREEN/YELLOW/RED; going to or from RED emits the historical
        FLAGGED/UNFLAGGED phone_number_quality_update (spec §5.4)."""
        previous, number.quality_rating = number.quality_rating, rating
        if (previous == "RED") == (rating == "RED"):
            return None
        return self.emit_change(number.waba_id, "phone_number_quality_update", {
            "display_phone_number": number.display_phone_number,
            "event": "FLAGGED" if rating == "RED" else "UNFLAGGED",
            "current_limit": number.messaging_limit}, number=number)

    def set_messaging_limit(self, number: Number, tier: str) -> Update:
        number.messaging_limit = tier
        return self.emit_change(number.waba_id, "business_capability_update",
                                {"max_daily_conversations_per_business": tier}, number=number)

    def set_throughput(self, number: Number, mps: int, level: str = "HIGH") -> Update:
        number.mps, number.throughput_level = mps, level
        return self.emit_change(number.waba_id, "phone_number_quality_update", {
            "display_phone_number": number.display_phone_number, "event": "THROUGHPUT_UPGRADE",
            "max_daily_conversations_per_business": number.messaging_limit}, number=number)
