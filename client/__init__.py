"""Clients of the Triton ensembles: ``DeepfakeClient`` (blocking), ``AsyncDeepfakeClient`` (``asyncio``), and
batch scoring (``dfguard score``: ``client.batch``). Their answers are ``dfguard.answer``'s ``Score``, ``Face`` and
``Track``, and ``Update`` for a video scored as it is read (``stream``)."""

from dfguard.answer import Face, Score, Track, Update

from .grpc_client import AsyncDeepfakeClient, Connection, DeepfakeClient, RetryPolicy, ScoringError

__all__ = ["AsyncDeepfakeClient", "Connection", "DeepfakeClient", "Face", "RetryPolicy", "Score", "ScoringError",
           "Track",
           "Update"]
