"""Staff routes for webhooks: endpoints, their parked deliveries, replays."""

from chalice import Blueprint

from chalicelib.api.http import STAFF, route

bp = Blueprint(__name__)
READ, WRITE = STAFF.require("webhooks:read"), STAFF.require("webhooks:write")


@route(bp, "/v1/admin/webhooks/{webhook_id}", ["PUT"], auth=WRITE, body="chalicelib.services.webhooks:WebhookIn", response="chalicelib.api.schemas:Webhook",
       errors=(409,), summary="Register or change a webhook (the secret is shown once, when created)")
def put_webhook(ctx, webhook_id):
    from chalicelib.services import webhooks

    return webhooks.put_webhook(ctx.settings, ctx.staff, webhook_id, ctx.body())


@route(bp, "/v1/admin/webhooks", ["GET"], auth=READ, response="chalicelib.api.schemas:WebhookList",
       summary="The program's webhooks with status, pause reason and counters")
def list_webhooks(ctx):
    from chalicelib.services import webhooks

    return webhooks.list_webhooks(ctx.staff.program_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}", ["GET"], auth=READ, response="chalicelib.api.schemas:Webhook", errors=(404,),
       summary="One webhook")
def get_webhook(ctx, webhook_id):
    from chalicelib.services import webhooks

    return webhooks.get_webhook(ctx.staff.program_id, webhook_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}", ["DELETE"], auth=WRITE, response="chalicelib.api.schemas:WebhookDeleted", errors=(404,),
       summary="Delete a webhook (deliveries waiting for it are dropped)")
def delete_webhook(ctx, webhook_id):
    from chalicelib.services import webhooks

    return webhooks.delete_webhook(ctx.staff.program_id, webhook_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}/resume", ["POST"], auth=WRITE, response="chalicelib.api.schemas:WebhookResumed",
       errors=(404,), summary="Resume a paused webhook; what parked while it was paused goes out again")
def resume_webhook(ctx, webhook_id):
    from chalicelib.services import webhooks

    return webhooks.resume_webhook(ctx.staff.program_id, webhook_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}/parked-deliveries", ["GET"], auth=READ, page_of="chalicelib.api.schemas:WebhookDelivery",
       errors=(404,), summary="Deliveries to this webhook that ran out of retries or parked while it was paused")
def parked_deliveries(ctx, webhook_id):
    from chalicelib.services import webhooks

    page = ctx.query()
    return webhooks.parked_deliveries(ctx.staff.program_id, webhook_id, page.limit, page.cursor)


@route(bp, "/v1/admin/webhooks/{webhook_id}/deliveries/{event_id}", ["GET"], auth=READ, response="chalicelib.api.schemas:WebhookDelivery",
       errors=(404,), summary="One delivery and its latest attempts")
def get_delivery(ctx, webhook_id, event_id):
    from chalicelib.services import webhooks

    return webhooks.get_delivery(ctx.staff.program_id, webhook_id, event_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}/deliveries/{event_id}/replay", ["POST"], auth=WRITE,
       response="chalicelib.api.schemas:WebhookDelivery", errors=(404, 409), summary="Send a parked (or delivered) delivery again")
def replay_delivery(ctx, webhook_id, event_id):
    from chalicelib.services import webhooks

    return webhooks.replay_delivery(ctx.staff.program_id, webhook_id, event_id)


@route(bp, "/v1/admin/webhooks/{webhook_id}/replays", ["POST"], auth=WRITE, body="chalicelib.services.webhooks:ReplayIn",
       response="chalicelib.api.schemas:WebhookReplay", errors=(404,), summary="Send every event of a time range again (at most 500 a call)")
def replay_range(ctx, webhook_id):
    from chalicelib.services import webhooks

    return webhooks.replay_range(ctx.staff.program_id, webhook_id, ctx.body())
