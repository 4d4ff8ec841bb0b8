"""All models, imported here so Base.metadata knows every table."""
from hub.models.automations import Cursor, Run, Scenario, ScenarioVersion, StepLog
from hub.models.broadcasts import Audience, Broadcast, BroadcastRecipient, Consent
from hub.models.channels import Channel
from hub.models.connectors import ConnectorRecord, CrmLink
from hub.models.contacts import Contact, ContactCrmStage, ContactField, ContactTag, ProfileFetch
from hub.models.conversations import Conversation, Message, MessageStatus
from hub.models.events import Delivery, Event
from hub.models.leases import Lease
from hub.platform.ratelimit import RateBucket
from hub.models.reports import (ReportBucket, ReportDeal, ReportFact, ReportFactState, ReportRollup,
                                ReportRollupMoney, ReportRun, ReportSchedule, ReportTemplateMessage,
                                ReportTime)
from hub.models.routing import OperatorState, QueueEntry, RoutingRule, SlaMark, Team, TeamMember
from hub.models.templates import Template
from hub.models.tracking import LeadAttribution, TrackedLink, Visit
from hub.models.users import ApiToken, User
from hub.models.webhooks import ChannelUpdate, RawWebhook

__all__ = [
    "Cursor",
    "Run",
    "Scenario",
    "ScenarioVersion",
    "StepLog",
    "ApiToken",
    "Audience",
    "Broadcast",
    "BroadcastRecipient",
    "Channel",
    "ChannelUpdate",
    "ConnectorRecord",
    "Consent",
    "Contact",
    "ContactCrmStage",
    "ContactField",
    "ContactTag",
    "ProfileFetch",
    "Conversation",
    "CrmLink",
    "Delivery",
    "Event",
    "Lease",
    "LeadAttribution",
    "Message",
    "OperatorState",
    "QueueEntry",
    "MessageStatus",
    "RateBucket",
    "RawWebhook",
    "ReportDeal",
    "ReportBucket",
    "ReportFact",
    "ReportFactState",
    "ReportRollup",
    "ReportRollupMoney",
    "ReportTemplateMessage",
    "ReportTime",
    "ReportRun",
    "ReportSchedule",
    "RoutingRule",
    "SlaMark",
    "Team",
    "TeamMember",
    "Template",
    "TrackedLink",
    "User",
    "Visit",
]
