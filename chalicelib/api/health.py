from chalice import Blueprint

from chalicelib.api.http import PUBLIC, route

bp = Blueprint(__name__)


@route(bp, "/health", ["GET"], auth=PUBLIC)
def health(ctx):
    return {"status": "ok"}
