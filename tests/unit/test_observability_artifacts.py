"""The observability artifacts stay true to the code that exports the metrics.

The Grafana dashboard, the Prometheus alert rules and the PromQL in docs/observability.md may
only name series and labels that ``octoroute.observability.metrics.Metrics`` really exposes;
every family it exposes is documented with its type and labels; the documented log and status
fields are the ones the code writes. When ``promtool`` is installed, the configuration, every
query and the alerts' behaviour are checked by Prometheus itself too.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from octoroute.config.schema import EndpointConfig
from octoroute.enums import Pool
from octoroute.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "observability.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "octoroute.json"
PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS_YML = ROOT / "deploy" / "prometheus" / "alerts.yml"
COMMON_PY = ROOT / "src" / "octoroute" / "api" / "common.py"
LEGACY_PY = ROOT / "src" / "octoroute" / "api" / "legacy.py"

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
TARGET_LABELS = frozenset({"job", "instance", "router"})
"""Labels Prometheus attaches at scrape time (``router`` by deploy/prometheus/prometheus.yml)."""
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$tier": ".*",
    "$endpoint": ".*",
}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

_METRIC = re.compile(r"\boctoroute_[a-z_]+")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"\b(octoroute_[a-z_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without)\s*\(([^)]*)\)")
_JOINING = re.compile(r"\b(on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_AGGREGATION = re.compile(r"\b(sum|min|max|avg|count|stddev|stdvar|topk|bottomk|quantile)\s*\(")
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ALERT_LABEL = re.compile(r"\{\{\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(
    r"label_values\(\s*(?:(octoroute_[a-z_]+)\s*(?:\{[^}]*\})?\s*,\s*)?([A-Za-z_]\w*)\s*\)"
)
_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_DOC_METRIC_ROW = re.compile(
    r"^\|\s*`(octoroute_[a-z_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|", re.MULTILINE
)


# --- what the code exposes --------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One exposed metric family, named as it is queried and documented."""

    name: str
    """Counters with ``_total`` (as in the exposition), histograms and gauges by their name."""
    type: str
    labels: frozenset[str]
    """Label names, without a histogram's ``le``."""


def _endpoints() -> list[EndpointConfig]:
    return [
        EndpointConfig(pool=Pool.FAST, index=0, name="m", base_url="http://h:1/v1", max_tokens=10),
        EndpointConfig(pool=Pool.FAST, index=1, name="m", base_url="http://h:2/v1", max_tokens=10),
        EndpointConfig(pool=Pool.DEEP, index=0, name="d", base_url="http://h:3/v1", max_tokens=10),
    ]


@cache
def _exposition() -> tuple[dict[str, Family], dict[str, frozenset[str]]]:
    """The families of a fresh ``Metrics``, and every queryable series name with its labels.

    The text parser names counter families without ``_total`` (their samples keep it) and
    reports each ``_created`` series as a gauge family of its own. ``_created`` series are not
    offered for queries: the multiprocess collector used with ``--workers`` does not write them.
    """
    metrics = Metrics(_endpoints())
    metrics.key("k")  # the client-key families have series once [auth] names a key
    text = metrics.render().decode()
    parsed = list(text_string_to_metric_families(text))
    main = {f.name for f in parsed if f.type in ("counter", "histogram")}
    families: dict[str, Family] = {}
    series: dict[str, set[str]] = {}
    for family in parsed:
        if family.name.endswith("_created") and family.name.removesuffix("_created") in main:
            continue
        assert family.samples, f"{family.name} has no samples, so its labels cannot be checked"
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
        labels = frozenset(k for s in family.samples for k in s.labels) - {"le"}
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = Family(name, family.type, labels)
    return families, {name: frozenset(labels) for name, labels in series.items()}


def families() -> dict[str, Family]:
    """Every exposed family by its documented name."""
    return _exposition()[0]


def series_labels() -> dict[str, frozenset[str]]:
    """Every queryable series name (``_total``, ``_bucket``, ``_sum``, ``_count``, gauges)."""
    return _exposition()[1]


# --- reading PromQL ---------------------------------------------------------------------------


def _blank_strings(expr: str) -> str:
    """``expr`` with every string literal emptied, so label values are never read as names."""
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> list[str]:
    """The octoroute series an expression reads, in order of appearance."""
    return _METRIC.findall(_blank_strings(expr))


def _matching_paren(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def _opening_paren(text: str, end: int) -> int:
    """Index of the parenthesis opening the one closing at ``end``."""
    depth = 0
    for index in range(end, -1, -1):
        if text[index] == ")":
            depth += 1
        elif text[index] == "(":
            depth -= 1
            if depth == 0:
                return index
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def _labels(raw: str) -> set[str]:
    return {label.strip() for label in raw.split(",") if label.strip()}


def groupings(expr: str) -> list[tuple[set[str], str]]:
    """Each ``by``/``without`` clause's labels with the text of the expression it aggregates.

    Handles both ``sum by (a) (x)`` and ``sum (x) by (a)``.
    """
    text = _blank_strings(expr)
    found = []
    for match in _GROUPING.finditer(text):
        after = match.end()
        while after < len(text) and text[after].isspace():
            after += 1
        if after < len(text) and text[after] == "(":
            argument = text[after : _matching_paren(text, after) + 1]
        else:
            before = match.start() - 1
            while before >= 0 and text[before].isspace():
                before -= 1
            assert before >= 0, f"{match[0]!r} aggregates nothing in {expr!r}"
            assert text[before] == ")", f"cannot tell what {match[0]!r} aggregates in {expr!r}"
            argument = text[_opening_paren(text, before) : before + 1]
        found.append((_labels(match[2]), argument))
    return found


def output_labels(expr: str) -> set[str]:
    """The labels an expression's result can carry (an approximation good for these queries).

    The labels kept by its ``by`` clauses when it has some; none after an aggregation without
    one; otherwise the labels of the series it reads plus the scrape-time target labels.
    """
    clauses = [labels for labels, _ in groupings(expr)]
    if clauses:
        return set.intersection(*clauses) - {"le"}
    if _AGGREGATION.search(_blank_strings(expr)):
        return set()
    known = series_labels()
    labels: set[str] = set(TARGET_LABELS)
    for name in metric_names(expr):
        labels |= known.get(name, frozenset())
    return labels


def label_problems(expr: str) -> list[str]:
    """Every label an expression names that the series it applies to do not have."""
    known = series_labels()
    problems = []
    text = _blank_strings(expr)
    for name, matchers in _SELECTOR.findall(text):
        for label in _MATCHER.findall(matchers):
            if label not in known.get(name, frozenset()):
                problems.append(f"{name} has no label {label!r}")
    for labels, argument in groupings(expr):
        for name in metric_names(argument):
            for label in labels - known.get(name, frozenset()):
                problems.append(f"grouping by {label!r}, which {name} lacks")
    union = set().union(*(known.get(name, frozenset()) for name in metric_names(expr)))
    for _, raw in _JOINING.findall(text):
        for label in _labels(raw) - union:
            problems.append(f"vector matching on {label!r}, which no series here has")
    for match in re.finditer(r"\bhistogram_quantile\s*\(", text):
        argument = text[match.end() - 1 : _matching_paren(text, match.end() - 1) + 1]
        names = metric_names(argument)
        if not names or not all(name.endswith("_bucket") for name in names):
            problems.append("histogram_quantile over something other than _bucket series")
        if not any("le" in labels for labels, _ in groupings(argument)):
            problems.append("histogram_quantile without le in its aggregation")
    return problems


def assert_valid_promql(expr: str, where: str) -> None:
    """``expr`` reads only exposed series, through labels those series have."""
    names = metric_names(expr)
    known = series_labels()
    unknown = sorted({name for name in names if name not in known})
    assert not unknown, (
        f"{where}: {unknown} not exposed by Metrics; queryable series are {sorted(known)}"
    )
    problems = label_problems(expr)
    assert not problems, f"{where}: {problems} in {expr!r}"


# --- reading the artifacts --------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, rows' collapsed panels included."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    """``(panel title, target)`` for every query of every panel."""
    return [
        (panel["title"], target)
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]


def alert_rules_by_regex() -> list[tuple[str, str]]:
    """``(alert name, expr)`` read line by line, without a YAML parser."""
    text = ALERTS_YML.read_text(encoding="utf-8")
    names = re.findall(r"^\s*- alert:\s*(\S+)\s*$", text, re.MULTILINE)
    exprs = re.findall(r"^\s*expr:\s*(.+?)\s*$", text, re.MULTILINE)
    assert len(names) == len(exprs), "every rule needs one alert name and one single-line expr"
    return list(zip(names, exprs, strict=True))


def alert_rules_by_yaml() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, parsed as YAML (skips when PyYAML is missing)."""
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(ALERTS_YML.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def doc_text() -> str:
    """docs/observability.md."""
    return DOC.read_text(encoding="utf-8")


def doc_blocks(lang: str) -> list[str]:
    """The bodies of the doc's fenced blocks tagged ``lang``."""
    return [m["body"] for m in _FENCE.finditer(doc_text()) if m["lang"] == lang]


def doc_section(title: str) -> str:
    """The text under a heading of the doc, up to the next heading of the same or a higher level."""
    text = doc_text()
    match = re.search(rf"^(#+) {re.escape(title)}\n", text, re.MULTILINE)
    assert match is not None, f"no heading {title!r} in {DOC.name}"
    level = len(match[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def backticked(text: str) -> set[str]:
    """Every ``code`` span of ``text``."""
    return set(re.findall(r"`([^`\n]+)`", text))


def doc_promql() -> list[str]:
    """Every PromQL expression the doc shows: one per ```promql block."""
    return [block.strip() for block in doc_blocks("promql")]


# --- (1) the dashboard reads only what exists -------------------------------------------------


def test_metrics_exposition_lists_the_expected_families() -> None:
    exposed = families()

    assert "octoroute_requests_total" in exposed
    assert exposed["octoroute_requests_total"].labels == {"tier", "strategy"}
    assert exposed["octoroute_routing_duration_ms"].type == "histogram"
    assert "octoroute_routing_duration_ms_bucket" in series_labels()
    assert "octoroute_routing_duration_ms" not in series_labels()
    assert "le" in series_labels()["octoroute_routing_duration_ms_bucket"]


def test_every_dashboard_query_reads_exposed_series_through_their_labels() -> None:
    targets = dashboard_targets()

    assert len(targets) >= 15
    for title, target in targets:
        assert metric_names(target["expr"]), f"panel {title!r}: a query reads no octoroute series"
        assert_valid_promql(target["expr"], f"dashboard panel {title!r}")


def test_dashboard_legends_name_labels_the_query_returns() -> None:
    for title, target in dashboard_targets():
        legend = target.get("legendFormat", "")
        missing = set(_LEGEND_LABEL.findall(legend)) - output_labels(target["expr"])
        assert not missing, f"panel {title!r}: legend {legend!r} uses {missing}"


def test_dashboard_covers_the_operators_questions() -> None:
    used = {name for _, target in dashboard_targets() for name in metric_names(target["expr"])}
    panel_types = {panel["type"] for panel in dashboard_panels()}

    for needed in (
        "octoroute_requests_total",
        "octoroute_routing_duration_ms_bucket",
        "octoroute_routing_fallbacks_total",
        "octoroute_upstream_time_to_first_byte_seconds_bucket",
        "octoroute_upstream_request_duration_seconds_bucket",
        "octoroute_upstream_responses_total",
        "octoroute_upstream_retries_total",
        "octoroute_failovers_total",
        "octoroute_endpoint_healthy",
        "octoroute_in_flight_requests",
        "octoroute_mid_stream_failures_total",
        "octoroute_tokens_total",
        "octoroute_background_health_task_failures_total",
    ):
        assert needed in used, f"no panel shows {needed}"
    assert {"piechart", "state-timeline", "stat", "timeseries"} <= panel_types


def test_dashboard_is_importable_grafana_json() -> None:
    board = dashboard()

    assert board["uid"] == "octoroute"
    assert board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    assert board.get("id") is None, "an exported dashboard must not carry a database id"
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels():
        assert panel["title"], "every panel needs a title"
        grid = panel["gridPos"]
        assert min(grid["w"], grid["h"]) > 0, panel["title"]
        assert 0 <= grid["x"] <= grid["x"] + grid["w"] <= 24, f"{panel['title']!r} is off the grid"
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} needs a description"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, f"panel {panel['title']!r} has no query"
        assert len(refs) == len(set(refs)), f"panel {panel['title']!r} repeats a refId"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"


def test_dashboard_variables_come_from_label_values_of_exposed_labels() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}

    source = variables["DS_PROMETHEUS"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for name in ("tier", "endpoint"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        query = (
            variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        )
        match = _LABEL_VALUES.fullmatch(query.strip())
        assert match is not None, f"${name} should come from label_values(...), got {query!r}"
        metric, label = match[1], match[2]
        assert label == name
        assert metric is not None, f"${name} must name its metric: {query!r}"
        assert label in series_labels().get(metric, frozenset()), query
        assert_valid_promql(query, f"variable ${name}")


def test_dashboard_filters_by_its_variables_only_where_the_label_exists() -> None:
    for title, target in dashboard_targets():
        expr = target["expr"]
        for name, matchers in _SELECTOR.findall(expr):
            for variable in ("tier", "endpoint"):
                if f"${variable}" in matchers:
                    assert variable in series_labels()[name], f"{title!r}: ${variable} on {name}"


# --- (2) alerts and documented queries read only what exists ----------------------------------


def test_every_alert_expression_reads_exposed_series_through_their_labels() -> None:
    rules = alert_rules_by_regex()

    assert len(rules) >= 6
    for name, expr in rules:
        assert_valid_promql(expr, f"alert {name}")


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules_by_yaml()

    assert [(r["alert"], r["expr"]) for r in rules] == alert_rules_by_regex()
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        available = output_labels(rule["expr"])
        for text in rule["annotations"].values():
            missing = set(_ALERT_LABEL.findall(text)) - available
            assert not missing, f"{rule['alert']}: annotation uses {missing}"


def test_the_briefed_alerts_exist() -> None:
    exprs = dict(alert_rules_by_regex())

    assert exprs["OctorouteEndpointDown"] == "octoroute_endpoint_healthy == 0"
    assert exprs["OctorouteTierExhausted"] == "sum by (tier) (octoroute_endpoint_healthy) == 0"
    assert exprs["OctorouteHealthProberCrashed"] == (
        "increase(octoroute_background_health_task_failures_total[10m]) > 0"
    )
    assert "octoroute_upstream_responses_total" in exprs["OctorouteUpstreamFailureRate"]
    assert "octoroute_mid_stream_failures_total" in exprs["OctorouteMidStreamFailures"]
    assert "octoroute_routing_fallbacks_total" in exprs["OctorouteRoutingFallbacks"]


def test_every_documented_query_reads_exposed_series_through_their_labels() -> None:
    queries = doc_promql()

    assert len(queries) >= 15
    for index, expr in enumerate(queries, start=1):
        assert metric_names(expr), f"promql block {index} reads no octoroute series"
        assert_valid_promql(expr, f"{DOC.name} promql block {index}")


def test_doc_shows_the_briefed_queries() -> None:
    queries = {" ".join(q.split()) for q in doc_promql()}

    assert "sum by (tier) (rate(octoroute_requests_total[5m]))" in queries
    assert (
        "histogram_quantile(0.95, sum by (le, endpoint) "
        "(rate(octoroute_upstream_time_to_first_byte_seconds_bucket[5m])))"
    ) in queries
    assert "octoroute_endpoint_healthy == 0" in queries
    assert "sum by (tier) (octoroute_endpoint_healthy)" in queries


# --- (3) every exposed family is documented, as it is -----------------------------------------


def documented_metrics() -> dict[str, tuple[str, set[str]]]:
    """``name -> (type, labels)`` from the doc's metric tables; each name documented once."""
    rows = _DOC_METRIC_ROW.findall(doc_text())
    names = [name for name, _, _ in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"documented more than once: {duplicates}"
    return {name: (kind, backticked(labels)) for name, kind, labels in rows}


def test_every_exposed_family_is_documented_with_its_type_and_labels() -> None:
    documented = documented_metrics()

    for name, family in families().items():
        assert name in documented, f"{name} is exposed but not documented in {DOC.name}"
        kind, labels = documented[name]
        assert kind == family.type, f"{name} is a {family.type}, documented as {kind}"
        assert labels == family.labels, f"{name} has labels {sorted(family.labels)}, doc {labels}"


def test_doc_documents_no_metric_that_is_not_exposed() -> None:
    ghosts = set(documented_metrics()) - set(families())

    assert not ghosts, f"documented but not exposed: {sorted(ghosts)}"


def test_doc_scrape_config_is_the_shipped_one() -> None:
    shipped = PROMETHEUS_YML.read_text(encoding="utf-8").splitlines()
    while shipped and shipped[0].startswith("#"):
        shipped.pop(0)
    blocks = [block for block in doc_blocks("yaml") if "scrape_configs:" in block]

    assert len(blocks) == 1
    assert blocks[0].splitlines() == shipped


def test_shipped_scrape_config_targets_octoroute_and_loads_the_alerts() -> None:
    text = PROMETHEUS_YML.read_text(encoding="utf-8")

    assert re.search(r"^rule_files:\n\s+- alerts\.yml$", text, re.MULTILINE)
    assert 'targets: ["octoroute:8080"]' in text
    assert "honor_labels: true" in text


def test_doc_describes_every_alert_and_no_other() -> None:
    shipped = {name for name, _ in alert_rules_by_regex()}
    documented = {code for code in backticked(doc_section("Alerts")) if code.startswith("Octo")}

    assert documented == shipped


# --- log and status fields --------------------------------------------------------------------


def _function(path: Path, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    raise AssertionError(f"no function {name} in {path}")


def _string_keys(node: ast.AST) -> set[str]:
    """String keys of every dict literal under ``node``."""
    return {
        key.value
        for child in ast.walk(node)
        if isinstance(child, ast.Dict)
        for key in child.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def request_line_fields() -> set[str]:
    """The fields ``log_request`` puts on the request line (``request_id`` comes from context)."""
    function = _function(COMMON_PY, "log_request")
    fields = _string_keys(function)
    for node in ast.walk(function):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            for element in elements:
                if (
                    isinstance(element, ast.Subscript)
                    and isinstance(element.slice, ast.Constant)
                    and isinstance(element.slice.value, str)
                ):
                    fields.add(element.slice.value)
    return fields | {"request_id"}


def documented_request_fields() -> set[str]:
    """The fields named in the first column of the request-line table."""
    section = doc_section("The request line")
    fields: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and "`" in cells[1]:
            fields |= backticked(cells[1])
    return fields


def test_every_request_line_field_is_documented_and_no_other() -> None:
    code = request_line_fields()

    assert {"route", "status", "duration_ms", "tier", "ttfb_ms"} <= code
    assert documented_request_fields() == code


def test_doc_request_line_examples_use_documented_fields() -> None:
    section = doc_section("The request line")
    json_line = next(block for block in doc_blocks("json") if '"event":"request"' in block)
    text_line = next(block for block in doc_blocks("text") if "] request " in block)

    assert json_line in section
    assert text_line in section
    fields = set(json.loads(json_line)) - {"event", "level", "timestamp"}
    assert fields <= documented_request_fields()
    assert set(re.findall(r" ([a-z_]+)=", text_line)) <= documented_request_fields()


def test_every_status_field_is_documented() -> None:
    for route, function in (("GET /health", "health"), ("GET /models", "models")):
        section = backticked(doc_section(f"`{route}`"))
        missing = _string_keys(_function(LEGACY_PY, function)) - section - {"models"}
        assert not missing, f"{route} fields not documented: {sorted(missing)}"


def test_doc_states_the_privacy_rule_and_the_metrics_exposure_rule() -> None:
    text = doc_text()

    assert "No prompt or answer content is ever logged at `info` or above" in text
    assert "**Do not expose `/metrics` publicly.**" in text
    for setting in ("`OCTOROUTE_LOG`", "`--log-level`", "`[observability] log_format`"):
        assert setting in text


# --- promtool: Prometheus's own checks --------------------------------------------------------


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=30, check=False
    )


def _substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_its_rules() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_YML))

    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_and_doc_query(tmp_path: Path) -> None:
    exprs = [_substitute(target["expr"]) for _, target in dashboard_targets()] + doc_promql()
    rules = [{"record": f"check:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "queries", "rules": rules}]}))

    result = _promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def _render(text: str, labels: dict[str, str]) -> str:
    rendered = _ALERT_LABEL.sub(lambda m: labels[m[1]], text)
    assert "{{" not in rendered, f"only $labels templates can be checked: {text!r}"
    return rendered


Labels = dict[str, str]
Scenario = tuple[str, list[Labels], list[tuple[str, str, list[Labels]]]]
"""A name, input series, and ``(alert, evaluation time, the label sets expected to fire)``."""

ROUTER: Labels = {"job": "octoroute", "instance": "octoroute:8080", "router": "octoroute:8080"}
FAST_0: Labels = {"job": "octoroute", "router": "octoroute:8080", "tier": "fast", "endpoint": "m"}


def _series(name: str, labels: Labels, values: str) -> Labels:
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


ALERT_SCENARIOS: list[Scenario] = [
    (
        "an instance down for five minutes, its replica fine",
        [
            _series("octoroute_endpoint_healthy", {**FAST_0, "instance": "h:1"}, "1 0x12"),
            _series("octoroute_endpoint_healthy", {**FAST_0, "instance": "h:2"}, "1x12"),
        ],
        [
            ("OctorouteEndpointDown", "4m", []),
            ("OctorouteEndpointDown", "7m", [{**FAST_0, "instance": "h:1"}]),
            ("OctorouteTierExhausted", "7m", []),
        ],
    ),
    (
        "the only instance of a tier down",
        [
            _series(
                "octoroute_endpoint_healthy",
                {**FAST_0, "tier": "deep", "endpoint": "d", "instance": "h:3"},
                "1 0x5",
            )
        ],
        [("OctorouteTierExhausted", "3m", [{"tier": "deep"}])],
    ),
    (
        "a third of an instance's attempts fail",
        [
            _series(
                "octoroute_upstream_responses_total",
                {**FAST_0, "instance": "h:1", "status_class": "2xx"},
                "0+10x30",
            ),
            _series(
                "octoroute_upstream_responses_total",
                {**FAST_0, "instance": "h:1", "status_class": "5xx"},
                "0+5x30",
            ),
            _series(
                "octoroute_upstream_responses_total",
                {**FAST_0, "instance": "h:2", "status_class": "error"},
                "0 0 1x28",
            ),
        ],
        [
            ("OctorouteUpstreamFailureRate", "5m", []),
            (
                "OctorouteUpstreamFailureRate",
                "20m",
                [{"tier": "fast", "endpoint": "m", "instance": "h:1"}],
            ),
        ],
    ),
    (
        "a stream broke",
        [_series("octoroute_mid_stream_failures_total", {**ROUTER, "endpoint": "m"}, "0 0 1 1")],
        [("OctorouteMidStreamFailures", "3m", [{"endpoint": "m"}])],
    ),
    (
        "the prober crashed once",
        [_series("octoroute_background_health_task_failures_total", ROUTER, "0 0 1 1 1")],
        [
            ("OctorouteHealthProberCrashed", "1m", []),
            ("OctorouteHealthProberCrashed", "3m", [ROUTER]),
        ],
    ),
    (
        "the LLM router falls back three times in four",
        [
            _series("octoroute_routing_fallbacks_total", {**ROUTER, "reason": "timeout"}, "0+3x40"),
            _series(
                "octoroute_requests_total",
                {**ROUTER, "tier": "fast", "strategy": "llm"},
                "0+1x40",
            ),
        ],
        [
            ("OctorouteRoutingFallbacks", "10m", []),
            ("OctorouteRoutingFallbacks", "35m", [{}]),
        ],
    ),
    (
        "the router stops answering scrapes",
        [_series("up", ROUTER, "1 0x5")],
        [("OctorouteDown", "2m", []), ("OctorouteDown", "4m", [ROUTER])],
    ),
]


@needs_promtool
def test_alerts_fire_when_and_only_when_they_should(tmp_path: Path) -> None:
    rules = {rule["alert"]: rule for rule in alert_rules_by_yaml()}
    covered = {alert for _, _, checks in ALERT_SCENARIOS for alert, _, _ in checks}
    assert covered == set(rules), "every alert needs a scenario, and only real alerts have one"
    tests = []
    for scenario, series, checks in ALERT_SCENARIOS:
        cases = []
        for alert, at, expected in checks:
            rule = rules[alert]
            alerts = []
            for labels in expected:
                full = {**labels, **rule["labels"]}
                alerts.append(
                    {
                        "exp_labels": full,
                        "exp_annotations": {
                            key: _render(value, full) for key, value in rule["annotations"].items()
                        },
                    }
                )
            cases.append({"alertname": alert, "eval_time": at, "exp_alerts": alerts})
        tests.append(
            {"name": scenario, "interval": "1m", "input_series": series, "alert_rule_test": cases}
        )
    path = tmp_path / "alerts_test.yml"
    path.write_text(
        json.dumps({"rule_files": [str(ALERTS_YML)], "evaluation_interval": "1m", "tests": tests})
    )

    result = _promtool("test", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_keys_fast_increments_reach_the_exposition() -> None:
    metrics = Metrics([])
    key = metrics.key("k")

    key.count_request(1)
    key.add_estimated_tokens(250)

    assert metrics.registry.get_sample_value("octoroute_key_requests_total", {"key": "k"}) == 1
    assert (
        metrics.registry.get_sample_value("octoroute_key_estimated_tokens_total", {"key": "k"})
        == 250
    )
