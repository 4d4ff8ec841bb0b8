"""hub: WhatsApp Business Platform conversations into the CRMs sales teams use."""
__version__ = "0.1.0"


def create_app(config=None, **kwargs):
    """The Flask app factory (imported lazily so `import hub` stays light)."""
    from hub.app import create_app as _create_app

    return _create_app(config, **kwargs)
