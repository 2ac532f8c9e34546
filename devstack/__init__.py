"""The local stack: moto DynamoDB, a WeChat stand-in, the stream and schedule triggers, and
``chalice local``, all on loopback. Run it with ``python -m devstack`` (``make run``).

Nothing here imports ``chalicelib`` or ``app`` at import time: the environment must be set first
(PynamoDB and the settings read it once), which `devstack.runner` does before importing them.
"""
