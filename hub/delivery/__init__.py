"""The delivery ledger: claim, lease, batch, backoff, dead letters and replay."""
