"""WhatsApp messages out: queue, compose, send under the number's limits, the 24-hour window, media."""
