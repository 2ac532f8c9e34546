"""The API's own documentation: the OpenAPI document and a page that shows it."""

from chalice import Blueprint

from chalicelib.api import openapi
from chalicelib.api.http import PUBLIC, route
from chalicelib.api.schemas import OpenApiDocument

bp = Blueprint(__name__)


@route(bp, "/openapi.json", ["GET"], auth=PUBLIC, response=OpenApiDocument, uses_store=False,
       summary="This API's OpenAPI 3.1 document")
def openapi_document(ctx):
    return openapi.document(ctx.app)


@route(bp, "/docs", ["GET"], auth=PUBLIC, media_type="text/html; charset=utf-8", uses_store=False,
       summary="This API's documentation as a web page")
def docs_page(ctx):
    return openapi.render_html(openapi.document(ctx.app))
