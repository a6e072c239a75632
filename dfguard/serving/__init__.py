"""Serving: starting Triton securely (``server``) and the CPU variant's Python-backend models."""
