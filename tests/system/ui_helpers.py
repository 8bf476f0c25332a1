"""Running tests/ui/dashboard.mjs (the dashboard in headless Chromium) from the system
tests: the skip condition, and a scenario run with its config, output and outcome."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "ui" / "dashboard.mjs"
ARTIFACTS = REPO / "build-test" / "ui-artifacts"   # screenshots, kept after the run

needs_browser = pytest.mark.skipif(
    not (Path("/usr/bin/chromium").exists() and shutil.which("node")
         and (REPO / "ui" / "node_modules" / "playwright-core").exists()),
    reason="needs /usr/bin/chromium, node and ui/node_modules (make deps)")


def scenario_config(tmp_path, scenario, url, **fields):
    """Writes the scenario's config file; returns its path."""
    config = {"url": url, "username": harness.ADMIN_USER, "password": harness.ADMIN_PASSWORD,
              "shots": str(ARTIFACTS), **fields}
    path = Path(tmp_path) / f"{scenario}.json"
    path.write_text(json.dumps(config))
    return path


def run_scenario(scenario, node, tmp_path, **fields):
    """Runs SCENARIO against NODE's dashboard; asserts it passed; returns its output."""
    path = scenario_config(tmp_path, scenario, f"https://{node.api_address}/ui/", **fields)
    proc = subprocess.run(["node", str(SCRIPT), scenario, str(path)], capture_output=True,
                          text=True, timeout=180, cwd=REPO)
    print(proc.stdout)
    print(proc.stderr)
    assert proc.returncode == 0, f"{scenario}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout
