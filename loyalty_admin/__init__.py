"""Operator tools: `loyalty-admin` (provisioning) and `python -m loyalty_admin.replay_failures`."""
