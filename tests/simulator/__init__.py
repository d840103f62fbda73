"""Tests of the simulated cluster against the real APIs' behaviour."""
