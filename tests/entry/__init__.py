"""Tests of shared/entry through the functions: HTTP answers, event dedupe, `serve`."""
