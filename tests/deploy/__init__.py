"""Tests of the install paths: every kustomization, the image."""
