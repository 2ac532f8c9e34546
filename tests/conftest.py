"""Settings for every test, set before anything imports `chalicelib` (PynamoDB reads its host and
region at import). The e2e tests start their own stack in a subprocess with its own settings."""

import os
import socket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WECHAT_PORT = _free_port()

os.environ.update({
    "LOYALTY_STAGE": "local",
    "LOYALTY_TABLE_NAME": "loyalty-test",
    "LOYALTY_REGION": "us-east-1",
    "LOYALTY_WECHAT_API_BASE": f"http://127.0.0.1:{WECHAT_PORT}",
    "LOYALTY_WECHATPAY_API_BASE": f"http://127.0.0.1:{WECHAT_PORT}",
    "LOYALTY_CONFIG_CACHE_SECONDS": "0",
    "LOYALTY_LOG_LEVEL": "WARNING",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "loyalty",
})
os.environ.pop("LOYALTY_DYNAMODB_ENDPOINT", None)
