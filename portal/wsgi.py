"""The WSGI entry point of the production server: `gunicorn -c python:portal.gunicorn_conf portal.wsgi:app`.

Each gunicorn worker imports this module after the fork (the app is never preloaded in the master), so the
models, FAISS and the database connections are each worker's own.
"""

from portal import create_app

app = create_app()
