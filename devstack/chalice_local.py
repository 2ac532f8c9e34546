"""`chalice local`, with a listen backlog fit for concurrent clients.

Chalice's local server keeps socketserver's default backlog of 5 pending connections, so 50
clients connecting at once (as the concurrency tests do, and as API Gateway would accept) get
connection resets. Same CLI, same arguments: `python -m devstack.chalice_local local ...`.
"""

import sys

from chalice import local
from chalice.cli import main

local.ThreadedHTTPServer.request_queue_size = 256

if __name__ == "__main__":
    sys.exit(main())
