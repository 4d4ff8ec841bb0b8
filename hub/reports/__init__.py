"""Reports: the documented metrics (docs/metrics.md) of conversations in a period, as
figures (summary) and as one row per conversation (export).

metrics.py holds the definitions as pure functions over a conversation's messages;
rows.py reads conversations and their messages in batches and applies them.
"""
