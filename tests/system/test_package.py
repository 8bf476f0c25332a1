"""Issue 16: the Debian package (`make deb`, scripts/build_deb.sh, debian/). It builds with
dpkg-buildpackage and passes lintian; `dpkg -i` puts every file where it says and makes the
system user and the data dirs; the units pass `systemd-analyze verify`; the config files
show every option of --help at its default; the installed vigild runs a one-node cluster
from the installed config file (as the user vigil, its data in /var/lib/vigil); the
installed vigil-se serves; `dpkg --remove` keeps the data, `dpkg --purge` removes the rest.

It installs on this machine (as `make test` runs as root), so it skips, saying why, when it
cannot: not root, no dpkg-buildpackage or debhelper, or a vigil package already installed
(never overwritten). Its processes bind 127.0.0.1 only, on ports of its own."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

import harness

ROOT = harness.REPO_ROOT
FILES = ["/usr/sbin/vigild", "/usr/sbin/vigil-se", "/usr/bin/vigil",
         "/usr/share/man/man8/vigild.8.gz", "/usr/share/man/man8/vigil-se.8.gz",
         "/usr/share/man/man1/vigil.1.gz", "/etc/vigil/vigild.conf", "/etc/vigil/vigil-se.conf",
         "/lib/systemd/system/vigild.service", "/lib/systemd/system/vigil-se.service",
         "/usr/lib/sysusers.d/vigil.conf", "/usr/lib/tmpfiles.d/vigil.conf",
         "/usr/share/bash-completion/completions/vigil",
         "/usr/share/doc/vigil/examples/vigil-alerts.yml",
         "/usr/share/doc/vigil/examples/vigil-dashboard.json"]
FLAG_DEFAULT = re.compile(r"^  --([a-z][a-z0-9-]*)(?: (\S+))?\s.*?(?:\(default ([^)]*)\))?$")


def run(argv, timeout=120, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def why_not():
    if os.geteuid() != 0:
        return "installing a package needs root (`make test` runs as root)"
    for tool in ("dpkg-buildpackage", "dh", "dpkg"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian packages dpkg-dev and debhelper; `make deps`)"
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "vigil"], capture_output=True,
                       text=True)
    if "installed" in p.stdout or "config-files" in p.stdout:
        return "a vigil package is installed on this machine: the test never replaces it"
    return None


@pytest.fixture(scope="module")
def deb():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    out = Path(tempfile.mkdtemp(prefix="vigil-deb-"))
    p = run([str(ROOT / "scripts" / "build_deb.sh"), str(out)], timeout=600)
    path = Path(p.stdout.strip().splitlines()[-1])
    assert path.exists(), p.stdout
    yield path
    shutil.rmtree(out, ignore_errors=True)


def help_flags(binary):
    """{flag: default or None} from BINARY --help (its options' lines); a flag that takes no
    value is off by default ("false" in an INI file)."""
    flags = {}
    for line in run([binary, "--help"]).stdout.splitlines():
        m = FLAG_DEFAULT.match(line)
        if m and m.group(1) not in ("help", "version", "config"):
            flags[m.group(1)] = m.group(3) if m.group(2) else "false"
    return flags


def conf_settings(path):
    """{name: (value, commented)} of the config file's `[# ]name = value` lines."""
    out = {}
    for line in Path(path).read_text().splitlines():
        m = re.fullmatch(r"(# )?([a-z][a-z0-9-]*) =\s?(.*)", line)
        if m:
            out[m.group(2)] = (m.group(3), m.group(1) is not None)
    return out


def check_conf(binary, conf, uncommented):
    flags, settings = help_flags(binary), conf_settings(conf)
    assert set(flags) == set(settings), (conf, set(flags) ^ set(settings))
    for name, default in flags.items():
        value, commented = settings[name]
        if name in uncommented:
            assert not commented and value == uncommented[name], (conf, name, value)
            continue
        assert commented, (conf, name, "is set: the file shows defaults only")
        assert value == (default or ""), (conf, name, value, default)


def start(argv, log):
    with open(log, "wb") as f:
        return subprocess.Popen(argv, stdout=f, stderr=f)


def run_installed_cluster(tmp_path):
    """vigild from /etc/vigil/vigild.conf as the user vigil (ports from flags: this machine
    is shared), until it answers as a one-node cluster with a leader."""
    api, raft, se = (harness.allocate_port() for _ in range(3))
    proc = start(["setpriv", "--reuid=vigil", "--regid=vigil", "--init-groups", "/usr/sbin/vigild", "--config",
                  "/etc/vigil/vigild.conf", "--api", f"127.0.0.1:{api}", "--raft",
                  f"127.0.0.1:{raft}", "--se-listen", f"127.0.0.1:{se}"], tmp_path / "vigild.log")
    data = Path("/var/lib/vigil/controller")
    try:
        harness.wait_until(lambda: (data / "initial-admin-password").exists()
                           and (data / "cluster-credentials.json").exists(), 30,
                           "the installed vigild to bootstrap in /var/lib/vigil/controller")
        ca = tmp_path / "ca.pem"
        ca.write_text(json.loads((data / "cluster-credentials.json").read_text())["tls_cert"])
        auth = ("admin", (data / "initial-admin-password").read_text().strip())

        def leads():
            try:
                r = requests.get(f"https://127.0.0.1:{api}/api/cluster/runtime", auth=auth,
                                 verify=str(ca), timeout=5)
            except requests.RequestException:
                return False
            return r.status_code == 200 and r.json()["leader_id"] == 1
        harness.wait_until(leads, 30, "the installed vigild to lead its one-node cluster")
        r = requests.get(f"https://127.0.0.1:{api}/metrics", auth=auth, verify=str(ca),
                         timeout=5)
        assert r.status_code == 200 and "vigil_raft_role{role=\"leader\"} 1" in r.text
        assert data.stat().st_uid == Path("/var/lib/vigil").stat().st_uid != 0
        owners = {p.stat().st_uid for p in data.rglob("*")}
        assert owners == {data.stat().st_uid}, "a file in the data dir not owned by vigil"
    finally:
        harness.terminate(proc)
    assert proc.returncode == 0, (tmp_path / "vigild.log").read_text()[-2000:]


def run_installed_se(tmp_path):
    admin = harness.allocate_port()
    # the user vigil cannot enter pytest's tmp dirs (mode 0700): a dir of its own in /tmp
    shared = Path(tempfile.mkdtemp(prefix="vigil-se-pkg-"))
    shared.chmod(0o755)
    config = shared / "se.json"
    config.write_text(json.dumps({"healthmonitor": [], "pool": [], "virtualservice": []}))
    config.chmod(0o644)
    proc = start(["setpriv", "--reuid=vigil", "--regid=vigil", "--init-groups", "/usr/sbin/vigil-se", "--config",
                  "/etc/vigil/vigil-se.conf", "--name", "se-pkg", "--admin",
                  f"127.0.0.1:{admin}", "--config-file", str(config)], tmp_path / "se.log")
    try:
        def serves():
            try:
                return requests.get(f"http://127.0.0.1:{admin}/status", timeout=2).json()
            except (requests.RequestException, ValueError):
                return None
        harness.wait_until(serves, 20, "the installed vigil-se to serve its admin endpoint")
        assert serves()["state"] == "STANDALONE"
        assert Path("/var/lib/vigil/se").exists()
    finally:
        harness.terminate(proc)
        shutil.rmtree(shared, ignore_errors=True)
    assert proc.returncode == 0, (tmp_path / "se.log").read_text()[-2000:]


def test_package_installs_runs_and_purges(deb, tmp_path):
    installed = False
    try:
        run(["dpkg", "-i", str(deb)])
        installed = True
        for f in FILES:
            assert Path(f).exists(), f
        assert run(["id", "-u", "vigil"]).stdout.strip() != "0"
        for d in ("/var/lib/vigil/controller", "/var/lib/vigil/se"):
            st = Path(d).stat()
            assert (st.st_mode & 0o777) == 0o750 and st.st_uid != 0, d
        for f in ("vigild.service", "vigil-se.service"):
            assert not Path(f"/etc/systemd/system/multi-user.target.wants/{f}").exists(), \
                f"{f} enabled at installation"
        if shutil.which("systemd-analyze"):
            p = run(["systemd-analyze", "verify", "/lib/systemd/system/vigild.service",
                     "/lib/systemd/system/vigil-se.service"], check=False)
            assert p.returncode == 0 and p.stderr == "" and p.stdout == "", p.stderr
        for program in ("vigild", "vigil-se", "vigil"):
            binary = shutil.which(program, path="/usr/sbin:/usr/bin")
            assert run([binary, "--version"]).stdout == f"{program} " + \
                run([str(harness.VIGILD_DEFAULT), "--version"]).stdout.split()[1] + "\n"
        check_conf("/usr/sbin/vigild", "/etc/vigil/vigild.conf",
                   {"data-dir": "/var/lib/vigil/controller"})
        check_conf("/usr/sbin/vigil-se", "/etc/vigil/vigil-se.conf",
                   {"data-dir": "/var/lib/vigil/se"})
        run_installed_cluster(tmp_path)
        run_installed_se(tmp_path)

        run(["dpkg", "--remove", "vigil"])
        assert not Path("/usr/sbin/vigild").exists()
        assert Path("/etc/vigil/vigild.conf").exists(), "remove must keep the conffiles"
        assert Path("/var/lib/vigil/controller/initial-admin-password").exists(), \
            "remove must keep the data"
        run(["dpkg", "--purge", "vigil"])
        installed = False
        for f in FILES + ["/var/lib/vigil", "/etc/vigil"]:
            assert not Path(f).exists(), f"{f} left after purge"
        status = run(["dpkg-query", "-W", "-f=${Status}", "vigil"], check=False).stdout
        assert "installed" not in status, status
    finally:
        if installed:
            run(["dpkg", "--purge", "vigil"], check=False)


def systemctl(*args, check=True):
    return run(["systemctl", *args], timeout=120, check=check)


def test_units_start_ready_reload_and_stop_under_systemd(request):
    """Where systemd runs (PID 1): `systemctl start` returns once READY=1 came, reload and
    stop work. The ports come from a drop-in (this machine is shared)."""
    if not Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is not this machine's init: the units cannot be started here "
                    "(test_sd_notify.py checks the readiness protocol without it)")
    deb = request.getfixturevalue("deb")  # built only where it is used
    dropins = [Path("/etc/systemd/system/vigild.service.d"),
               Path("/etc/systemd/system/vigil-se.service.d")]
    api, raft, se, admin = (harness.allocate_port() for _ in range(4))
    installed = False
    try:
        run(["dpkg", "-i", str(deb)])
        installed = True
        dropins[0].mkdir(parents=True, exist_ok=True)
        (dropins[0] / "test.conf").write_text(
            "[Service]\nExecStart=\nExecStart=/usr/sbin/vigild --config /etc/vigil/vigild.conf"
            f" --api 127.0.0.1:{api} --raft 127.0.0.1:{raft} --se-listen 127.0.0.1:{se}\n")
        config = Path("/var/lib/vigil/se/test-config.json")
        config.write_text(json.dumps({"healthmonitor": [], "pool": [], "virtualservice": []}))
        dropins[1].mkdir(parents=True, exist_ok=True)
        (dropins[1] / "test.conf").write_text(
            "[Service]\nExecStart=\nExecStart=/usr/sbin/vigil-se --config /etc/vigil/vigil-se.conf"
            f" --name se-unit --admin 127.0.0.1:{admin} --config-file {config}\n")
        systemctl("daemon-reload")
        systemctl("start", "vigild")       # returns once READY=1 came
        assert systemctl("is-active", "vigild").stdout.strip() == "active"
        assert requests.get(f"https://127.0.0.1:{api}/api/healthz", verify=False,
                            timeout=5).status_code == 200
        systemctl("start", "vigil-se")
        assert requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).status_code == 200
        systemctl("reload", "vigil-se")
        assert systemctl("is-active", "vigil-se").stdout.strip() == "active"
        systemctl("stop", "vigil-se", "vigild")
        for unit in ("vigild", "vigil-se"):
            state = systemctl("show", "-p", "Result", "--value", unit).stdout.strip()
            assert state == "success", (unit, state)
    finally:
        for unit in ("vigil-se", "vigild"):
            systemctl("stop", unit, check=False)
        for d in dropins:
            shutil.rmtree(d, ignore_errors=True)
        if installed:
            run(["dpkg", "--purge", "vigil"], check=False)
        systemctl("daemon-reload", check=False)
