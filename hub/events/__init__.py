"""Events: the transactional outbox, the event payloads, raw webhooks kept and replayed."""
