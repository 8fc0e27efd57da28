"""The Grafana dashboard (configs/grafana/sequencer.json) against what nodes export.

Two parts: the JSON is an importable dashboard (unique panel ids, grid
positions, one Prometheus datasource reference, the template variables the
queries use), and every `sequencer_*` name in its queries is a name a node of a
live 4-node devnet really exposes on /metrics after some load, suffixes
included (`_total` counters; `_bucket`, `_sum`, `_count` histograms). L1
metrics come from the batching node (node 0) only.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.node.cluster import running
from tests.node.test_l1 import load

DASHBOARD = Path(__file__).resolve().parents[2] / "configs" / "grafana" / "sequencer.json"

# A metric name in PromQL: an identifier starting `sequencer_` (not the tail of a longer one).
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])sequencer_[A-Za-z0-9_:]*")
# Grafana template variables: `$name` or `${name}` / `${name:format}`.
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
EXPOSED_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
L1_PREFIX = "sequencer_l1_"
# Label-only families that have no sample until the event first happens.
EMPTY_UNTIL_EVENT = frozenset({"sequencer_gossip_datagrams_dropped_total"})
SAMPLE_SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}

# What the dashboard must show (the brief's panels), as exposed sample names.
REQUIRED_METRICS = frozenset(
    {
        "sequencer_height",
        "sequencer_blocks_committed_total",
        "sequencer_txs_committed_total",
        "sequencer_finality_latency_seconds_bucket",
        "sequencer_block_interval_seconds_bucket",
        "sequencer_block_round_bucket",
        "sequencer_mempool_txs",
        "sequencer_txs_received_total",
        "sequencer_gossip_messages_total",
        "sequencer_gossip_message_bytes_total",
        "sequencer_gossip_datagrams_dropped_total",
        "sequencer_peers",
        "sequencer_storage_write_seconds_bucket",
        "sequencer_l1_lag_blocks",
        "sequencer_l1_last_posted_height",
        "sequencer_l1_batches_posted_total",
        "sequencer_l1_errors_total",
        "sequencer_equivocations_total",
        "sequencer_consensus_round",
    }
)


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Top-level panels and those nested in (collapsed) rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('id')} {panel.get('title')!r}", target.get("expr", "")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else query or ""
            yield f"variable {variable['name']}", text
            yield f"variable {variable['name']}", variable.get("definition", "")


def referenced_metrics(dashboard: dict[str, Any]) -> set[str]:
    return {name for _, expr in queries(dashboard) for name in METRIC_NAME.findall(expr)}


def parse_exposition(text: str) -> tuple[set[str], set[str]]:
    """(names with samples, names declared by `# TYPE` with the sample names they imply)."""
    sampled: set[str] = set()
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            declared.update(name + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            match = EXPOSED_NAME.match(line)
            assert match is not None, line
            sampled.add(match.group())
    return sampled, declared


def missing(referenced: set[str], exposition: str) -> set[str]:
    """Referenced names that the exposition neither samples nor declares."""
    sampled, declared = parse_exposition(exposition)
    return referenced - sampled - declared


def datasource_refs(dashboard: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for panel in all_panels(dashboard):
        if panel.get("type") == "row":
            continue
        yield f"panel {panel['id']}", panel.get("datasource")
        for target in panel.get("targets", []):
            yield f"panel {panel['id']} target {target.get('refId')}", target.get("datasource")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield f"variable {variable['name']}", variable.get("datasource")


# --- (a) structure -------------------------------------------------------------------------


def test_dashboard_is_an_importable_dashboard() -> None:
    dashboard = load_dashboard()
    assert isinstance(dashboard["title"], str)
    assert dashboard["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard.get("id") is None  # an exported id would clash on import
    panels = list(all_panels(dashboard))
    assert len(panels) >= 20

    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), "panel ids are not unique"

    occupied: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        grid = panel.get("gridPos")
        assert isinstance(grid, dict), panel["id"]
        assert all(isinstance(grid.get(key), int) for key in ("h", "w", "x", "y")), panel["id"]
        assert min(grid["h"], grid["w"]) > 0, panel["id"]
        assert min(grid["x"], grid["y"]) >= 0, panel["id"]
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} wider than the grid"
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                other = occupied.setdefault((row, column), panel["id"])
                assert other == panel["id"], f"panels {other} and {panel['id']} overlap"

    for panel in panels:
        assert panel.get("type"), panel["id"]
        assert panel.get("title"), panel["id"]
        assert "gridPos" in panel, panel["id"]
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["id"]
            continue
        targets = panel.get("targets")
        assert isinstance(targets, list), panel["id"]
        assert targets, f"panel {panel['id']} has no targets"
        ref_ids = [target.get("refId") for target in targets]
        assert all(ref_ids), panel["id"]
        assert len(ref_ids) == len(set(ref_ids)), panel["id"]
        for target in targets:
            assert isinstance(target.get("expr"), str), panel["id"]
            assert target["expr"].strip(), panel["id"]


def test_datasource_references_are_consistent() -> None:
    dashboard = load_dashboard()
    refs = list(datasource_refs(dashboard))
    assert all(isinstance(ref, dict) for _, ref in refs), [w for w, r in refs if not r]
    distinct = {json.dumps(ref, sort_keys=True) for _, ref in refs}
    assert len(distinct) == 1, distinct
    ref = refs[0][1]
    assert ref["type"] == "prometheus"
    # The uid is a template: a datasource variable or an import input (`${DS_...}`).
    match = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
    assert match, ref
    name = match.group(1)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    inputs = {i["name"]: i for i in dashboard.get("__inputs", [])}
    if name in variables:
        assert variables[name]["type"] == "datasource"
        assert variables[name]["query"] == "prometheus"
    else:
        assert name in inputs, f"${{{name}}} is neither a variable nor an import input"
        assert inputs[name]["type"] == "datasource"
        assert inputs[name]["pluginId"] == "prometheus"


def test_queries_use_defined_variables_and_select_nodes() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    node = variables["node"]
    assert node["type"] == "query"
    assert re.fullmatch(r"label_values\(.*,\s*(instance|node)\)", node["definition"])
    for where, expr in queries(dashboard):
        for braced, bare in VARIABLE.findall(expr):
            name = braced or bare
            assert name.startswith("__") or name in variables, f"{where}: ${name} undefined"
        if where.startswith("panel"):
            # Per-node panels: every series is selected by the node variable.
            for selector in re.findall(r"sequencer_\w*(\{[^}]*\})?", expr):
                assert '"$node"' in selector, f"{where}: {expr}"
        assert expr.count("(") == expr.count(")"), f"{where}: {expr}"
        assert expr.count("{") == expr.count("}"), f"{where}: {expr}"
        for quantile in re.findall(r"histogram_quantile\(([^,]*),", expr):
            assert 0 <= float(quantile) <= 1, f"{where}: {expr}"
        if "histogram_quantile" in expr:
            assert "_bucket" in expr, f"{where}: {expr}"
            assert re.search(r"\ble\b", expr), f"{where}: {expr}"


def test_dashboard_has_the_required_panels() -> None:
    dashboard = load_dashboard()
    referenced = referenced_metrics(dashboard)
    assert sorted(REQUIRED_METRICS - referenced) == []
    exprs = [expr for where, expr in queries(dashboard) if where.startswith("panel")]
    for histogram in ("sequencer_finality_latency_seconds", "sequencer_block_interval_seconds"):
        quantiles = {
            float(q)
            for expr in exprs
            if f"{histogram}_bucket" in expr
            for q in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)
        }
        assert {0.5, 0.9, 0.99} <= quantiles, (histogram, quantiles)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel query, with the template variables filled in, as a recording rule."""
    dashboard = load_dashboard()
    rules = []
    for index, (where, expr) in enumerate(queries(dashboard)):
        if not where.startswith("panel"):
            continue
        concrete = re.sub(r"\$__\w+", "1m", expr)
        concrete = VARIABLE.sub(".*", concrete)
        rules.append({"record": f"dashboard:query_{index}", "expr": concrete})
    path = tmp_path / "rules.json"  # YAML is a superset of JSON
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- (b) names against a live devnet -------------------------------------------------------

SAMPLE_EXPOSITION = """\
# HELP sequencer_height Height of the last finalized block
# TYPE sequencer_height gauge
sequencer_height 3.0
# TYPE sequencer_blocks_committed_total counter
sequencer_blocks_committed_total 3.0
# TYPE sequencer_finality_latency_seconds histogram
sequencer_finality_latency_seconds_bucket{le="0.005"} 1.0
sequencer_finality_latency_seconds_bucket{le="+Inf"} 1.0
sequencer_finality_latency_seconds_count 1.0
sequencer_finality_latency_seconds_sum 0.001
# TYPE sequencer_gossip_datagrams_dropped_total counter
"""


def test_the_name_check_reports_misspellings_and_wrong_suffixes() -> None:
    good = {
        "sequencer_height",
        "sequencer_blocks_committed_total",
        "sequencer_finality_latency_seconds_bucket",
        "sequencer_finality_latency_seconds_sum",
        "sequencer_gossip_datagrams_dropped_total",
    }
    assert missing(good, SAMPLE_EXPOSITION) == set()
    wrong = {
        "sequencer_heigth",  # misspelled
        "sequencer_blocks_committed",  # counter without _total
        "sequencer_height_total",  # gauge with _total
        "sequencer_finality_latency_seconds",  # histogram without _bucket
    }
    assert missing(good | wrong, SAMPLE_EXPOSITION) == wrong


def misspell(dashboard: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    broken = copy.deepcopy(dashboard)
    for panel in all_panels(broken):
        for target in panel.get("targets", []):
            target["expr"] = target["expr"].replace(old, new)
    return broken


def test_every_dashboard_metric_is_exported_by_a_live_devnet(tmp_path: Path) -> None:
    dashboard = load_dashboard()
    referenced = referenced_metrics(dashboard)
    assert referenced
    l1 = {name for name in referenced if name.startswith(L1_PREFIX)}
    with running(tmp_path / "devnet") as cluster:
        # Histograms have samples after their first observation: load every node first.
        load(cluster, 800, seed=11)
        expositions = [
            httpx.get(f"{cluster.url(index)}/metrics", timeout=10.0).text
            for index in range(cluster.size)
        ]
    for index, exposition in enumerate(expositions):
        # L1 metrics: the batching node (node 0) only.
        expected = referenced if index == 0 else referenced - l1
        assert sorted(missing(expected, exposition)) == [], f"node {index}"
    # After load the panels have data: every name has samples somewhere.
    sampled = set().union(*(parse_exposition(text)[0] for text in expositions))
    assert sorted(referenced - sampled - EMPTY_UNTIL_EVENT) == []
    # And the check fails on the real output when the dashboard is wrong.
    for old, new in [
        ("sequencer_height", "sequencer_heigth"),
        ("sequencer_txs_committed_total", "sequencer_txs_committed"),
        ("sequencer_finality_latency_seconds_bucket", "sequencer_finality_latency_bucket"),
    ]:
        broken = referenced_metrics(misspell(dashboard, old, new))
        assert new in broken
        assert new in missing(broken, expositions[0])
