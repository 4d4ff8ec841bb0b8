"""`gunicorn wsgi:app`: the web tier for scale-out (config from HUB_CONFIG / HUB_*)."""
from hub.app import create_app

app = create_app()
