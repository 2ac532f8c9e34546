"""Deployment packaging: the merge template for `chalice package` and checks on its output."""
