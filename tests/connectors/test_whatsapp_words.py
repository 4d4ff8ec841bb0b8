"""The words the CRM connectors carrying WhatsApp conversations (amoCRM's chat, HubSpot's
inbox) show for a failed message or a closed window: connectors/whatsapp_words.py."""
from __future__ import annotations

from connectors import whatsapp_words
from connectors.amocrm import chat
from connectors.hubspot import inbox


def test_a_known_code_is_said_in_words_with_metas_detail_and_the_code_after():
    text = whatsapp_words.failure_text({"code": 131047, "title": "Re-engagement message"})
    assert text == ("WhatsApp did not deliver it: more than 24 hours have passed since the customer last wrote; "
                    "only an approved template can be sent (Meta error 131047: Re-engagement message)")


def test_an_unknown_code_gives_metas_own_detail_and_nothing_gives_a_plain_failure():
    assert whatsapp_words.failure_text({"code": 999, "details": " Odd thing "}) == \
        "WhatsApp did not deliver it: Odd thing (Meta error 999)"
    assert whatsapp_words.failure_text({"code": "x"}) == "WhatsApp did not deliver it: unknown reason (Meta error x)"
    assert whatsapp_words.failure_text({}) == whatsapp_words.failure_text(None) == \
        "WhatsApp did not deliver the message"
    assert len(whatsapp_words.failure_text({"code": 1, "details": "d" * 5000})) == 1000


def test_a_closed_window_names_up_to_ten_approved_templates_or_says_none_exists():
    templates = [{"name": f"t{i}", "language": "en"} for i in range(12)]
    text = whatsapp_words.window_closed_text(templates)
    assert text.startswith("Not sent to WhatsApp: the customer last wrote more than 24 hours ago")
    assert "t9 (en)." in text and "t10" not in text
    assert whatsapp_words.window_closed_text(None).endswith(
        "No approved template exists yet: create one in WhatsApp Manager.")


def test_amocrms_chat_and_hubspots_inbox_say_a_failure_the_same_way():
    error = {"code": 131052, "title": "Media download error"}
    assert chat.status_report({"status": "failed", "error": error})[2] == whatsapp_words.failure_text(error)
    assert inbox.status_body({"status": "failed", "error": error}) == {
        "statusType": "FAILED", "errorMessage": whatsapp_words.failure_text(error)}
    assert "the customer's media could not be downloaded" in whatsapp_words.failure_text(error)


def test_a_message_from_a_crm_thread_that_cannot_go_to_whatsapp_says_why():
    assert whatsapp_words.not_sendable(None, "hi", thread="chat") == \
        "This chat is not a WhatsApp conversation of the hub; nothing was sent."
    assert whatsapp_words.not_sendable(5, "", thread="thread") == \
        "Only text (and files as links) can be sent to WhatsApp from here; nothing was sent."
    assert whatsapp_words.not_sendable(5, "hi", thread="thread") is None


def test_a_refused_message_says_the_hubs_reason_or_the_closed_window_with_its_templates():
    assert whatsapp_words.refusal_text({"ok": False, "detail": "opted_out: the contact opted out"}) == \
        "Not sent to WhatsApp: opted_out: the contact opted out"
    closed = {"ok": False, "detail": "window_closed: 24 hours", "templates": [{"name": "hello", "language": "en"}]}
    assert whatsapp_words.refusal_text(closed) == whatsapp_words.window_closed_text(closed["templates"])
    assert len(whatsapp_words.refusal_text({"detail": "x" * 2000})) == 1000
