"""Issue 16: what contrib/ ships. The Prometheus alert rules pass `promtool check rules` and
their own `promtool test rules` cases (skipped, saying why, without Debian's prometheus);
the Grafana dashboard is valid JSON whose queries, like the rules', name only metrics the
programs export (docs/api.md's table for vigild, the SE's sources for vigil-se); the bash
completion completes the CLI's commands, words and options."""

import json
import re
import shutil
import subprocess

import pytest

import harness

CONTRIB = harness.REPO_ROOT / "contrib"
RULES = CONTRIB / "prometheus" / "vigil-alerts.yml"
DASHBOARD = CONTRIB / "grafana" / "vigil-dashboard.json"
COMPLETION = CONTRIB / "bash-completion" / "vigil"
METRIC = re.compile(r"\bvigil_[a-z0-9_]+")


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing (Debian package prometheus; `make deps`)")
    return path


def test_alert_rules_pass_promtool_check():
    p = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_alert_rules_fire_on_their_test_series():
    p = subprocess.run([promtool(), "test", "rules", "vigil-alerts.test.yml"],
                       cwd=RULES.parent, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def exported_names():
    """Every metric family name vigild documents and vigil-se's sources write."""
    api = (harness.REPO_ROOT / "docs" / "api.md").read_text()
    section = api[api.index("## Metrics"):api.index("## Cluster")]
    names = set(METRIC.findall(section))
    for src in (harness.REPO_ROOT / "src" / "se").glob("*.c"):
        names |= set(re.findall(r'"(vigil_se_[a-z0-9_]+)"', src.read_text()))
    return names


def used_names(text):
    out = set()
    for name in METRIC.findall(text):
        out.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return out


def test_dashboard_and_rules_name_only_exported_metrics():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["panels"], "no panels"
    exprs = []
    for panel in doc["panels"]:
        assert panel["targets"], panel["title"]
        exprs += [t["expr"] for t in panel["targets"]]
    exported = exported_names()
    assert {"vigil_raft_role", "vigil_se_state", "vigil_se_log_records_total"} <= exported
    for where, text in (("dashboard", "\n".join(exprs)), ("rules", RULES.read_text())):
        unknown = used_names(text) - exported
        assert not unknown, f"the {where} uses metrics nobody exports: {sorted(unknown)}"


def complete(line):
    """The words bash completion offers for LINE (the cursor at its end)."""
    words = line.split(" ")
    script = (f"source {COMPLETION}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_vigil\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    p = subprocess.run(["/bin/bash", "--norc", "-c", script], capture_output=True, text=True,
                       timeout=10, env={"PATH": "/nonexistent"})  # no vigil: no name lookups
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def test_bash_completion_completes_commands_words_and_options():
    assert {"cluster", "events", "logs", "pool", "serviceengine", "login"} <= complete("vigil ")
    assert complete("vigil cl") == {"cluster"}
    assert complete("vigil cluster ") == {"status", "known-hosts"}
    assert complete("vigil --json pool ") == {"list", "show", "create", "delete"}
    assert complete("vigil logs web --st") == {"--status-class"}
    assert complete("vigil logs web --status-class ") == {"1xx", "2xx", "3xx", "4xx", "5xx"}
    assert "--file" in complete("vigil pool create --")
    assert "--controller" in complete("vigil --")
    assert complete("vigil pool show ") == set()
    assert complete("vigil logs ") == set()
