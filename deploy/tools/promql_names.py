#!/usr/bin/env python3
"""The metric names the Grafana dashboards and Prometheus rules depend on.

    promql_names.py --dashboard deploy/grafana/dashboards/im-backend.json \
        --rules deploy/prometheus/rules/*.yml [--exprs]

prints one name per line as "<kind> <name>", kind being "scraped" (a series
the services must export) or "recorded" (a series a recording rule makes).
With --exprs it prints every PromQL expression instead (Grafana variables
replaced by values Prometheus accepts), one per line, for syntax checks.

Tests use it so that what they check cannot drift from the dashboards and
rules: tests/e2e/observability asserts every name returns data from a live
Prometheus; deploy/grafana:dashboard_test parses every expression.
"""

import argparse
import json
import re
import sys

import yaml

# PromQL words that look like identifiers but are not series names.
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "atan2", "start", "end",
}

# Grafana's built-in and dashboard variables, with stand-ins Prometheus
# accepts.
_GRAFANA_VARIABLES = [
    (re.compile(r"\$__rate_interval|\$__interval|\$__range"), "5m"),
    (re.compile(r"\$\{?(job|instance)\}?"), ".+"),
]

_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$",
                           re.DOTALL)


def grafana_to_promql(expr):
    """Replaces Grafana variables so that Prometheus can parse `expr`."""
    for pattern, value in _GRAFANA_VARIABLES:
        expr = pattern.sub(value, expr)
    return expr


def series_names(expr):
    """The series names an expression selects (metric names, not labels)."""
    text = re.sub(r'"(\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"'(\\.|[^'\\])*'", "''", text)
    text = re.sub(r"`[^`]*`", "``", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ",
        text)
    # Numbers, including 1e3 and 0x1f, so their letters are not names.
    text = re.sub(r"(?<![A-Za-z0-9_:])[0-9][0-9A-Za-z_.+-]*", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end():].lstrip()
        if word.lower() in _KEYWORDS or following.startswith("("):
            continue  # a keyword, function or aggregation
        names.add(word)
    return names


def dashboard_exprs(path):
    """Every query of a dashboard: panel targets (rows' nested panels too)
    and query variables (label_values(selector, label) -> selector)."""
    with open(path) as f:
        dashboard = json.load(f)
    exprs = []

    def visit(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    exprs.append(target["expr"])
            visit(panel.get("panels", []))

    visit(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        match = _LABEL_VALUES.match(query or "")
        exprs.append(match.group(1) if match else query)
    return exprs


def rules(paths):
    """(expressions, recorded names) of Prometheus rule files."""
    exprs, recorded = [], set()
    for path in paths:
        with open(path) as f:
            document = yaml.safe_load(f)
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                exprs.append(str(rule["expr"]))
                if "record" in rule:
                    recorded.add(rule["record"])
    return exprs, recorded


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dashboard", action="append", default=[])
    parser.add_argument("--rules", nargs="*", default=[])
    parser.add_argument("--exprs", action="store_true")
    args = parser.parse_args(argv)

    exprs = []
    for path in args.dashboard:
        exprs += [grafana_to_promql(e) for e in dashboard_exprs(path)]
    rule_exprs, recorded = rules(args.rules)
    exprs += rule_exprs
    if args.exprs:
        for expr in exprs:
            print(" ".join(expr.split()))
        return 0
    names = set()
    for expr in exprs:
        names |= series_names(expr)
    if not names:
        print("no metric names found", file=sys.stderr)
        return 1
    for name in sorted(names):
        print("recorded" if name in recorded else "scraped", name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
