"""A simulated cluster: a Kubernetes API and a Prometheus HTTP API served on loopback from a scenario.

The demo, the tests and the benchmarks talk to it exactly as they would to a real cluster.
"""
