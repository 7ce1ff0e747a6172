"""A fake Kubernetes API server for the cluster tests (never part of the product)."""

from .server import TOKEN, FakeKube

__all__ = ["TOKEN", "FakeKube"]
