"""The custom properties the connector writes, and creating the missing ones on request.

HubSpot refuses unknown properties, so the id properties (unique values, which make
creation idempotent) and the lead source properties must exist before deliveries. The
admin asks for them explicitly (Settings: "Create missing properties", then Test
connection); nothing is created behind their back.
"""
from __future__ import annotations

from typing import Any

from connectors.hubspot.client import HubSpotClient

GROUPS = {"contacts": "contactinformation", "deals": "dealinformation"}
LABELS = {
    "kind": "Lead source (hub)", "utm_source": "UTM source", "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign", "utm_content": "UTM content", "utm_term": "UTM term",
    "gclid": "Google click id", "yclid": "Yandex click id", "fbclid": "Facebook click id",
    "campaign": "Campaign (hub)", "link": "Tracked link (hub)", "code": "Tracked link code (hub)",
    "landing_page": "Landing page (hub)", "referrer": "Referrer (hub)",
}


def definition(object_type: str, name: str, label: str, *, unique: bool = False, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "string",
        "fieldType": "text",
        "groupName": GROUPS[object_type],
        "hasUniqueValue": unique,
        "description": description,
    }


def required(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(object type, property definition) for every custom property the settings use."""
    out = [
        ("contacts", definition("contacts", settings["contact_id_property"], "WhatsApp id (hub)", unique=True,
                                description="WhatsApp id of the contact, written by the hub; keeps contacts unique.")),
        ("deals", definition("deals", settings["deal_id_property"], "Hub conversation id", unique=True,
                             description="The hub conversation this deal was created for.")),
    ]
    for key, prop in sorted((settings.get("source_properties") or {}).items()):
        label = LABELS.get(key) or ("Ad " + key.split(".", 1)[1].replace("_", " ") if key.startswith("referral.") else key)
        out.append(("deals", definition("deals", prop, label, description=f"Lead source field '{key}', written by the hub.")))
    return out


def missing(client: HubSpotClient, settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(object_type, d) for object_type, d in required(settings) if client.property(object_type, d["name"]) is None]


def create_missing(client: HubSpotClient, settings: dict[str, Any]) -> list[str]:
    """Create what is missing; returns "<object>.<property>" for each one created."""
    created = []
    for object_type, d in missing(client, settings):
        client.create_property(object_type, d)
        created.append(f"{object_type}.{d['name']}")
    return created
