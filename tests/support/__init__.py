"""Helpers shared by the tests, benchmarks and infra checks: Lambda loading, local servers, moto, images."""
