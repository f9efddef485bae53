"""The Prometheus registry a process serves: its own series, and the process's as every
exporter has them (CPU seconds, resident memory, open and allowed files, start time; the
Python runtime's version and garbage collections), for alerts that need no node exporter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def service_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
