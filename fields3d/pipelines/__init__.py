"""Pipelines: each a plain function plus a config dataclass, composed from fields, encodings and renderers."""
