"""Load and soak runs of the local stack (`make load`, `make soak`; the smoke in `make test`).

`python -m bench.load --profile load|soak|ninety|smoke|selftest` starts its own local stack on
free ports, seeds a member population through the app's store (seed.py), runs the mixed profile
with Locust (locustfile.py), waits for the stream functions to catch up, checks the invariants
(checks.py), replays the same DynamoDB calls with bare boto3 at the same concurrency
(baseline.py), and reports throughput, latency percentiles, DynamoDB requests and write units
per operation and the stack's memory; `--write` records the report in bench/LOAD.md.
"""
