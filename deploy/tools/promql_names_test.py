#!/usr/bin/env python3
"""Tests of promql_names.py: python3 promql_names_test.py"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promql_names  # noqa: E402


class SeriesNamesTest(unittest.TestCase):

    def test_selectors_not_functions_labels_or_keywords(self):
        expr = ('histogram_quantile(0.99, sum by (job, le) '
                '(rate(grpc_server_handling_seconds_bucket{grpc_type="unary", '
                'job=~"im-.+"}[5m])))')
        self.assertEqual(promql_names.series_names(expr),
                         {"grpc_server_handling_seconds_bucket"})

    def test_binary_operators_and_modifiers(self):
        expr = ('a_total / on (job) group_left (instance) b:c:rate5m > 3 * '
                'ignoring (x) d offset 5m unless e bool > 1e3 and f or '
                'sum without (le) (g) > 0x1f')
        self.assertEqual(promql_names.series_names(expr),
                         {"a_total", "b:c:rate5m", "d", "e", "f", "g"})

    def test_label_values_and_strings_are_ignored(self):
        expr = 'up{job=~"im-(auth|presence)", code!="not_a_metric{x}"} == 0'
        self.assertEqual(promql_names.series_names(expr), {"up"})

    def test_aggregation_clause_after_the_body(self):
        expr = 'sum(rate(x_total[1m])) by (grpc_code) - time()'
        self.assertEqual(promql_names.series_names(expr), {"x_total"})

    def test_subquery_and_negative_offset(self):
        expr = 'max_over_time(rate(y_total[1m])[10m:1m]) + z offset -1h'
        self.assertEqual(promql_names.series_names(expr), {"y_total", "z"})

    def test_grafana_variables(self):
        expr = promql_names.grafana_to_promql(
            'rate(x_total{job=~"$job", instance=~"${instance}"}[$__rate_interval])')
        self.assertEqual(expr, 'rate(x_total{job=~".+", instance=~".+"}[5m])')


class FilesTest(unittest.TestCase):

    def test_dashboard_rows_and_variables(self):
        dashboard = {
            "panels": [
                {"type": "row", "panels": [
                    {"targets": [{"expr": "rate(inner_total[5m])"}]}]},
                {"targets": [{"expr": "outer"}, {"expr": ""}]},
            ],
            "templating": {"list": [
                {"type": "datasource", "query": "prometheus"},
                {"type": "query",
                 "query": {"query": 'label_values(up{job=~"im-.+"}, job)'}},
                {"type": "query", "query": "label_values(other_metric, instance)"},
            ]},
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(dashboard, f)
        try:
            self.assertEqual(
                promql_names.dashboard_exprs(f.name),
                ["rate(inner_total[5m])", "outer", 'up{job=~"im-.+"}',
                 "other_metric"])
        finally:
            os.unlink(f.name)

    def test_rules_split_recorded_names(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("groups:\n"
                    "  - name: g\n"
                    "    rules:\n"
                    "      - record: job:x:rate5m\n"
                    "        expr: sum by (job) (rate(x_total[5m]))\n"
                    "      - alert: XHigh\n"
                    "        expr: job:x:rate5m > 1\n")
        try:
            exprs, recorded = promql_names.rules([f.name])
            self.assertEqual(exprs, ["sum by (job) (rate(x_total[5m]))",
                                     "job:x:rate5m > 1"])
            self.assertEqual(recorded, {"job:x:rate5m"})
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
