"""Issue 10, must-show 3: the Grafana dashboard (and the alert rules) name only series the code
exports, cross-checked against the gateway's and a node's real registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from deploy_kit import (
    DEPLOY,
    exported_names,
    family_name,
    promql_metric_names,
    unknown_metrics,
)

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "shardgate.json"
TOPICS = ("throughput", "latency", "error", "admission", "replica", "disk", "mirror", "sweep")


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


async def test_dashboard_names_only_exported_metrics(tmp_path: Path) -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) > 20
    assert unknown_metrics(exprs, await exported_names(tmp_path)) == {}


async def test_alert_rules_name_only_exported_metrics(tmp_path: Path) -> None:
    assert unknown_metrics(_alert_exprs(), await exported_names(tmp_path)) == {}


async def test_mirror_and_sweeper_series_are_checked_like_the_rest(tmp_path: Path) -> None:
    """The dashboard's mirror and sweeper panels name series the merged branches export; no
    allow-list is left (the one kept while those branches were being built is gone)."""
    used = set().union(*(promql_metric_names(e) for e in _dashboard_exprs() + _alert_exprs()))
    exported = {family_name(name) for name in await exported_names(tmp_path)}
    for prefix in ("shardgate_mirror_", "shardgate_sweeper_"):
        names = {family_name(name) for name in used if name.startswith(prefix)}
        assert names and names <= exported, prefix


def test_dashboard_covers_every_topic_the_issue_lists() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in _panels(dashboard))
    assert [topic for topic in TOPICS if topic not in titles] == []
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    sources = {t["datasource"]["uid"] for p in _panels(dashboard) for t in p.get("targets", [])}
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert sources == {ds["uid"] for ds in provisioned["datasources"]}


def test_name_extraction_ignores_label_values_and_functions() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate("
        'shardgate_http_request_duration_seconds_bucket{job="shardgate_fake_total"}[5m])))'
    )
    assert promql_metric_names(expr) == {"shardgate_http_request_duration_seconds_bucket"}
    assert promql_metric_names('up{job="x"} == 0') == {"up"}
    assert promql_metric_names('process_open_fds{job=~"shardgate-.*"} / process_max_fds') == {
        "process_open_fds",
        "process_max_fds",
    }
    assert promql_metric_names("rate(python_gc_collections_total[5m])") == {
        "python_gc_collections_total"
    }
