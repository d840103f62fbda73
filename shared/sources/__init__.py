"""Where the figures come from: the Kubernetes API and Prometheus, read into small records."""
