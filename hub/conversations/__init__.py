"""Conversations: contacts and conversations, persons across channels, assignment and closing."""
