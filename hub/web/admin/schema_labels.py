"""Texts the admin shows that live in the core's schemas (the channel form, the generic
webhook connector) and in marshmallow's messages: listed here so they are extracted
into the catalogues; the form macro translates labels, help and errors at render time.
Connectors shipped as separate packages keep their own texts."""
from flask_babel import lazy_gettext as _l

CORE_SCHEMA_TEXTS = [
    # hub/channels/whatsapp/channels.py ChannelSettings
    _l("Name"), _l("How operators will see this number."), _l("Provider"),
    _l("Meta's Cloud API directly, or 360dialog's relay."), _l("Phone number ID"), _l("From WhatsApp > API Setup."),
    _l("WhatsApp Business Account ID"), _l("Display number"), _l("Messages per second"),
    _l("The number's throughput (80 by default)."), _l("API base URL"),
    _l("Leave empty for Meta / 360dialog; set for a relay."), _l("Access token"), _l("System-user token (Cloud API)."),
    _l("360dialog API key"), _l("App secret"), _l("Verifies Meta's webhook signatures."), _l("Verify token"),
    _l("Paste into Meta's webhook settings; generated when left empty."), _l("Webhook header token (360dialog)"),
    _l("360dialog sends it in a header with every webhook; generated when left empty."),
    _l("required for this provider"), _l("digits only"), _l("this number is already a channel"),
    # hub/channels/instagram/channels.py InstagramSettings, InstagramChannelUpdate
    _l("How operators will see this account."), _l("Instagram account ID"),
    _l("The professional account's ID (IG user id), digits."),
    _l("A token with instagram_manage_messages for this account."),
    _l("The Meta app's secret: it signs every webhook."),
    _l("Any phrase; enter the same in the app's webhook settings."), _l("Leave empty for graph.facebook.com."),
    _l("an http(s) URL, or empty for graph.facebook.com"), _l("A new token for the same account (checked with Meta)."),
    # connectors/webhook WebhookSettings
    _l("Endpoint URL"), _l("Every event is POSTed here as JSON."), _l("Signing secret"),
    _l("Standard Webhooks secret (whsec_...); the receiver verifies webhook-signature with it."),
    _l("Parallel requests"),
    _l("Events of different conversations sent at once; one conversation's events always go one after another, "
       "in order."),
    _l("Timeout (seconds)"), _l("A slower answer counts as a failure and is retried."),
    # marshmallow's own messages
    _l("Not a valid email address."), _l("Not a valid URL."), _l("Not a valid integer."), _l("Not a valid number."),
    _l("Not a valid string."), _l("Missing data for required field."), _l("Field may not be null."),
    _l("must not be empty"),
]

# Statuses shown in badges (conversation, message, delivery, health).
STATUS_TEXTS = [
    _l("open"), _l("closed"), _l("queued"), _l("sending"), _l("sent"), _l("delivered"), _l("read"), _l("failed"),
    _l("received"), _l("pending"), _l("leased"), _l("done"), _l("dead"), _l("ok"), _l("unhealthy"), _l("unknown"),
]
