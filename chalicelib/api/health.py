from chalice import Blueprint

from chalicelib.api.http import PUBLIC, route
from chalicelib.api.schemas import Health

bp = Blueprint(__name__)


@route(bp, "/health", ["GET"], auth=PUBLIC, response=Health, uses_store=False, summary="Liveness")
def health(ctx):
    return {"status": "ok"}
