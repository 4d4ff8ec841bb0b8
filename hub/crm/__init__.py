"""The CRM glue: connectors stored and built, checked, pulled; commands from the CRMs; links to CRM records."""
