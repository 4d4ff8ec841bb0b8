"""Contact-center routing: which team and operator a conversation goes to, and when.

Pure rules (hours.py, rules.py, strategies.py) take time and facts as arguments; the
engine (engine.py) reads and writes them in the caller's transaction and emits the
events (conversation.assigned, conversation.queued, conversation.transferred). The hub
knows no CRM here: CRM effects follow those events through the connectors.
"""
