"""CRM and webhook connectors; each kind is one self-contained package."""
