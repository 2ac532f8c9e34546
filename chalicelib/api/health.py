from chalice import Blueprint

from chalicelib.api.http import PUBLIC, route

bp = Blueprint(__name__)


@route(bp, "/health", ["GET"], auth=PUBLIC, response="chalicelib.api.schemas:Health", uses_store=False, summary="Liveness")
def health(ctx):
    return {"status": "ok"}
