"""WhatsApp billing: the rate card, pricing periods, the cost of each message."""
