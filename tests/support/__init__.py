"""Helpers for the tests alone (what benchmarks and infra share with them is ``devkit``)."""
