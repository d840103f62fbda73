"""Tests of shared/core: settings, logging, retries, matchers."""
