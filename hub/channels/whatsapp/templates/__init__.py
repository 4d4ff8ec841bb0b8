"""WhatsApp message templates: parameters checked and previewed, synced from the WhatsApp Business Account."""
