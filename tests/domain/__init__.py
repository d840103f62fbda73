"""Tests of shared/domain: a collection run, alerts, reports and rightsizing."""
