"""Web blueprints: health and metrics, inbound webhooks, the REST API, the admin."""
