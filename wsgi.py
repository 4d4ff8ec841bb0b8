"""`gunicorn wsgi:app`: the web tier for scale-out (config from HUB_CONFIG / HUB_*)."""
from hub import create_app

app = create_app()
