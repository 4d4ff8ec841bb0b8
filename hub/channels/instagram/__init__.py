"""Instagram professional accounts (Instagram API with the Messenger Platform) on the
channel contract: one channel per account. See docs/channels.md#instagram for setup,
what maps to what, and the messaging windows."""
