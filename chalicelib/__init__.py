"""The loyalty service: domain rules, storage, WeChat and HTTP glue. `app.py` only wires these."""
