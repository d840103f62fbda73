"""k8s-resource-monitor: the library every function and the CLI share."""

__version__ = "0.1.0"
