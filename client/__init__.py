"""Clients of the Triton ensembles: ``DeepfakeClient`` (blocking), ``AsyncDeepfakeClient`` (``asyncio``), and
batch scoring (``dfguard score``: ``client.batch``)."""

from .grpc_client import AsyncDeepfakeClient, Connection, DeepfakeClient, RetryPolicy, Score, ScoringError

__all__ = ["AsyncDeepfakeClient", "Connection", "DeepfakeClient", "RetryPolicy", "Score", "ScoringError"]
