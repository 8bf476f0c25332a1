"""scripts/check_layout.py: the tree obeys the layers of docs/architecture.md, and the checker
finds each kind of breach (an upward include, a circle, another program's header, a file or
a function too long) in a small tree made for it."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_layout.py"


def run(src):
    p = subprocess.run([sys.executable, str(CHECK), str(src)], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_the_source_tree_obeys_the_layers():
    rc, out = run(ROOT / "src")
    assert rc == 0, out
    assert "layers respected" in out, out


def write(tree, files):
    for rel, text in files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def fn(name, body_lines):
    return f"int {name}(void)\n{{\n" + "    x++;\n" * body_lines + "}\n"


def test_a_clean_small_tree_passes(tmp_path):
    write(tmp_path, {
        "common/buf.h": "int buf(void);\n",
        "controller/store/store.h": '#include "common/buf.h"\n',
        "controller/api/rest.c": '#include "controller/store/store.h"\n' + fn("f", 140),
        # a module in parts: store.c includes its part's header, the part the module's -int.h
        "controller/store/store.c": '#include "controller/store/store_part.h"\n',
        "controller/store/store_part.h": '#include "controller/store/store-int.h"\n',
        "controller/store/store-int.h": '#include "controller/store/store.h"\n',
    })
    rc, out = run(tmp_path)
    assert rc == 0, out


def test_each_kind_of_breach_is_named(tmp_path):
    write(tmp_path, {
        "common/buf.h": "int buf(void);\n",
        # upward: the store includes the API
        "controller/store/store.c": '#include "controller/api/rest.h"\n',
        "controller/api/rest.h": '#include "controller/store/store.h"\n',
        "controller/store/store.h": "\n",
        # same layer: net and store do not include each other
        "controller/net/http.c": '#include "controller/store/store.h"\n',
        # a circle inside one folder
        "se/a.h": '#include "se/b.h"\n',
        "se/b.h": '#include "se/a.h"\n',
        # not a part (no a-int.h): a circle too
        "se/c.c": '#include "se/c_x.h"\n',
        "se/c_x.h": '#include "se/c.h"\n',
        "se/c.h": "\n",
        # another program's header
        "cli/main.c": '#include "se/a.h"\n',
        # too long
        "se/long.c": "\n" * 1001,
        "se/fn.c": fn("too_long", 151),
        # a folder no layer names
        "controller/misc/x.c": "\n",
    })
    rc, out = run(tmp_path)
    assert rc == 1, out
    expected = [
        "controller/store/store.c: includes controller/api/rest.h: controller/api (layer 4) "
        "is not below controller/store (layer 1)",
        "controller/net/http.c: includes controller/store/store.h: controller/store (layer 1) "
        "is not below controller/net (layer 1)",
        "include circle: se/a -> se/b -> se/a",
        "include circle: se/c -> se/c_x -> se/c",
        "cli/main.c: includes se/a.h of another program (se)",
        "se/long.c: 1001 lines (at most 1000)",
        "se/fn.c:2: function too_long has 153 lines (at most 150)",
        "controller/misc/x.c: folder controller/misc is not in the layer table "
        "(scripts/check_layout.py)",
    ]
    for line in expected:
        assert line in out.splitlines(), (line, out)
