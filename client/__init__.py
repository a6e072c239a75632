"""Clients of the Triton ensembles: ``DeepfakeClient`` (blocking), ``AsyncDeepfakeClient`` (``asyncio``), and
batch scoring (``dfguard score``: ``client.batch``). Their answers are ``dfguard.answer``'s ``Score``, ``Face`` and
``Track``."""

from dfguard.answer import Face, Score, Track

from .grpc_client import AsyncDeepfakeClient, Connection, DeepfakeClient, RetryPolicy, ScoringError

__all__ = ["AsyncDeepfakeClient", "Connection", "DeepfakeClient", "Face", "RetryPolicy", "Score", "ScoringError",
           "Track"]
