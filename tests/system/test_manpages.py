"""Issue 16: --help and --version on all three programs, and man pages that cannot drift from
them: every flag `--help` lists is in the program's man page (man/) and the reverse. The
daemons' --help is made from the option tables their parsers read; the CLI's help text is
checked against its parser here (each listed flag is accepted)."""

import re
import shutil
import subprocess

import pytest

import harness

BUILD = harness.VIGILD_DEFAULT.parents[2]          # build/src/controller/vigild -> build
PROGRAMS = {
    "vigild": (BUILD / "src" / "controller" / "vigild", "man/vigild.8"),
    "vigil-se": (BUILD / "src" / "se" / "vigil-se", "man/vigil-se.8"),
    "vigil": (BUILD / "src" / "cli" / "vigil", "man/vigil.1"),
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags of the CLI's commands that take a value (the parser wants one after them).
CLI_VALUE_FLAGS = {"--controller", "--token", "--cacert", "--timeout", "--file", "--type",
                   "--since", "--status-class", "--username"}


def binary(program):
    path = PROGRAMS[program][0]
    if not path.exists():
        pytest.skip(f"{path} is not built (`make` builds it)")
    return path


def help_text(program):
    p = subprocess.run([str(binary(program)), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stderr == ""
    return p.stdout


def man_text(program):
    """The page's text with roff's escaped dashes made plain and its comments dropped."""
    raw = (harness.REPO_ROOT / PROGRAMS[program][1]).read_text()
    lines = [ln for ln in raw.splitlines() if not ln.startswith('.\\"')]
    return "\n".join(lines).replace("\\-", "-")


def flags_of(text):
    return set(FLAG.findall(text))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_help_and_man_page_list_the_same_flags(program):
    in_help, in_man = flags_of(help_text(program)), flags_of(man_text(program))
    assert "--help" in in_help and "--version" in in_help
    assert in_help - in_man == set(), f"in `{program} --help` but not in its man page"
    assert in_man - in_help == set(), f"in {PROGRAMS[program][1]} but not in `{program} --help`"


def test_vigild_help_leaves_out_hidden_and_test_flags():
    """The test build's vigild has the --test-* knobs; its --help still does not list them
    (they are no part of the contract, and the installed vigild refuses them)."""
    p = subprocess.run([str(harness.VIGILD), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0
    assert flags_of(p.stdout) == flags_of(help_text("vigild"))


def test_every_cli_help_flag_is_accepted_by_the_parser():
    """`vigil FLAG [VALUE] --version` exits 0 for each flag --help lists (an unknown flag is
    exit 2), so the help text cannot name a flag the parser lacks."""
    path = binary("vigil")
    for flag in sorted(flags_of(help_text("vigil"))):
        args = [flag] + (["5"] if flag in CLI_VALUE_FLAGS else [])
        p = subprocess.run([str(path)] + args + ["--version"], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 0, (flag, p.returncode, p.stderr)
    p = subprocess.run([str(path), "--no-such-flag", "--version"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2


def test_daemons_refuse_a_flag_their_help_does_not_list(tmp_path):
    for program in ("vigild", "vigil-se"):
        p = subprocess.run([str(binary(program)), "--data-dir", str(tmp_path / "d"),
                            "--no-such-flag", "1"], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (program, p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "no-such-flag" in p.stderr


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_version_is_the_meson_project_version(program):
    version = re.search(r"version\s*:\s*'([^']+)'",
                        (harness.REPO_ROOT / "meson.build").read_text()).group(1)
    p = subprocess.run([str(binary(program)), "--version"], capture_output=True, text=True,
                       timeout=10)
    assert (p.returncode, p.stdout) == (0, f"{program} {version}\n")


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_man_page_renders_without_warnings(program):
    if shutil.which("man") is None:
        pytest.skip("man (package man-db) is not installed")
    page = harness.REPO_ROOT / PROGRAMS[program][1]
    p = subprocess.run(["man", "--warnings", "-l", "-Tutf8", str(page)], capture_output=True,
                       text=True, timeout=30, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    assert "OPTIONS" in re.sub(".\x08", "", p.stdout)


def test_debian_changelog_carries_the_meson_version():
    """The package's version (debian/changelog's first entry, which Debian requires) is the
    project's: a release bumps both or this fails."""
    version = re.search(r"version\s*:\s*'([^']+)'",
                        (harness.REPO_ROOT / "meson.build").read_text()).group(1)
    first = (harness.REPO_ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(rf"vigil \({re.escape(version)}(-\d+)?\) ", first), (first, version)
