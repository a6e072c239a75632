"""What a trained model is at inference: the inputs it takes, computed the way every consumer computes them.

Serving, the in-process pipeline, the client and training all build on this package; it never imports them.
Modules are imported one by one (nothing here is imported eagerly), so a Triton step loads only what it uses.
"""
