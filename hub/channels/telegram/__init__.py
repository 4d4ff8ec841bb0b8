"""Telegram bots (Bot API) on the channel contract: one channel per bot. See
docs/channels.md#telegram for setup, what maps to what, and the limits."""
