#!/usr/bin/env python3
"""Checks deploy/grafana: dashboards pick their data source through the
"datasource" variable, have the expected rows, well-formed panels, and
queries Prometheus can parse (checked by Debian's promtool); provisioning
files are what Grafana expects."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.join(os.environ.get("TEST_SRCDIR", ""),
                    os.environ.get("TEST_WORKSPACE", ""))
if not os.path.isdir(os.path.join(ROOT, "deploy")):
    ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "deploy", "tools"))
import promql_names  # noqa: E402

GRAFANA = os.path.join(ROOT, "deploy", "grafana")
DASHBOARD = os.path.join(GRAFANA, "dashboards", "im-backend.json")
PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")
DATASOURCE = "${datasource}"
ROWS = ["Traffic", "Latency", "Delivery", "Presence", "Auth", "MySQL",
        "Process health"]


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


class DashboardTest(unittest.TestCase):

    def setUp(self):
        self.dashboard = load_dashboard()

    def test_identity(self):
        self.assertEqual(self.dashboard["uid"], "im-backend")
        self.assertTrue(self.dashboard["title"])
        self.assertIsInstance(self.dashboard["schemaVersion"], int)

    def test_datasource_is_a_variable(self):
        variables = {v["name"]: v
                     for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for name in ("job", "instance"):
            self.assertEqual(variables[name]["datasource"]["uid"], DATASOURCE)
        for panel in all_panels(self.dashboard):
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"]["uid"], DATASOURCE,
                             panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"]["uid"], DATASOURCE,
                                 panel["title"])

    def test_rows_in_order(self):
        rows = [p["title"] for p in self.dashboard["panels"]
                if p["type"] == "row"]
        self.assertEqual(rows, ROWS)
        # Every row has panels below it before the next row.
        types = [p["type"] for p in self.dashboard["panels"]]
        for i, kind in enumerate(types):
            if kind == "row":
                self.assertLess(i + 1, len(types))
                self.assertNotEqual(types[i + 1], "row")

    def test_panels_are_well_formed(self):
        ids = set()
        occupied = set()
        for panel in all_panels(self.dashboard):
            self.assertNotIn(panel["id"], ids, panel["title"])
            ids.add(panel["id"])
            pos = panel["gridPos"]
            self.assertLessEqual(pos["x"] + pos["w"], 24, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    self.assertNotIn((x, y), occupied,
                                     f"{panel['title']} overlaps")
                    occupied.add((x, y))
            if panel["type"] == "row":
                continue
            self.assertTrue(panel["targets"], panel["title"])
            ref_ids = [t["refId"] for t in panel["targets"]]
            self.assertEqual(len(ref_ids), len(set(ref_ids)), panel["title"])
            for target in panel["targets"]:
                self.assertTrue(target["expr"].strip(), panel["title"])

    def test_every_query_parses(self):
        exprs = [promql_names.grafana_to_promql(e)
                 for e in promql_names.dashboard_exprs(DASHBOARD)]
        self.assertGreater(len(exprs), 30)
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}", "expr": e}
            for i, e in enumerate(exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml",
                                         delete=False) as f:
            yaml.safe_dump(rules, f)
        try:
            result = subprocess.run([PROMTOOL, "check", "rules", f.name],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 0,
                             result.stdout + result.stderr)
        finally:
            os.unlink(f.name)

    def test_no_per_user_labels(self):
        per_entity = re.compile(r"\b(user|conversation|session|device)_id\b")
        for panel in all_panels(self.dashboard):
            for target in panel.get("targets", []):
                for field in ("expr", "legendFormat"):
                    self.assertIsNone(per_entity.search(target.get(field, "")),
                                      f"{panel['title']}: {target[field]}")


class ProvisioningTest(unittest.TestCase):

    def load(self, pattern):
        paths = glob.glob(os.path.join(GRAFANA, "provisioning", pattern))
        self.assertEqual(len(paths), 1, pattern)
        with open(paths[0]) as f:
            return yaml.safe_load(f)

    def test_datasource(self):
        config = self.load("datasources/*.yml")
        self.assertEqual(config["apiVersion"], 1)
        (source,) = config["datasources"]
        self.assertEqual(source["type"], "prometheus")
        self.assertTrue(source["url"].startswith("http"))

    def test_dashboard_provider(self):
        config = self.load("dashboards/*.yml")
        self.assertEqual(config["apiVersion"], 1)
        (provider,) = config["providers"]
        self.assertEqual(provider["type"], "file")
        self.assertTrue(os.path.isabs(provider["options"]["path"]))


if __name__ == "__main__":
    unittest.main()
