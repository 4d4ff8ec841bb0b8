"""Lead-source tracking: tracked wa.me links (/l/<slug>), their visits and codes, the
matching of a code in a conversation's first message, and reports per link and campaign."""
