"""hub: WhatsApp Business Platform conversations into the CRMs sales teams use.

Only the version lives here, so `import hub` (the shared leaves read it for their
User-Agent) pulls in nothing else; the app factory is `hub.app.create_app`."""
__version__ = "0.1.0"
