"""Benchmarks: django_dataflow against a persistent connection and the other Django pools.

Run ``python benchmarks/run.py --help``; the method and the latest numbers are in
docs/benchmarks.md. Nothing here is imported by the package or its tests.
"""
