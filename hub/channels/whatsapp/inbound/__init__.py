"""WhatsApp webhooks in: signature, parse, ingest, statuses, account events."""
