"""ASGI entry point for uvicorn/gunicorn workers: settings come from the environment."""

from medcard.web.app import create_app

app = create_app()
