"""Tests of shared/sources: Kubernetes decoding, the Lease, Prometheus and its flavours."""
