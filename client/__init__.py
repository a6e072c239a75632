"""gRPC client for the Triton ensembles and batch scoring (issue 6)."""
