#!/usr/bin/python3
"""Checks the source tree's shape (docs/architecture.md, "Layers"; docs/hacking.md):

- a file includes only its own folder or a lower layer (the table LAYERS below);
- no include circle between modules (a module is foo.c with foo.h and foo-int.h, and the
  files foo_*.c / foo_*.h that include foo-int.h: parts of one module split over files,
  such as the store's command handlers; foo-t.h, types that others embed, depends on
  nothing but types and is a module of its own);
- no source file over 1,000 lines, no function over 150.

Prints one line per breach and exits 1 if there is any; exits 0 and prints a summary
otherwise. Run by `make test` (make check-layout)."""
import os
import re
import sys

# Folder -> layer rank. A file may include headers of its own folder or of a folder with a
# lower rank; folders of the same rank do not include each other.
LAYERS = {
    'common': 0,
    'controller/metrics': 0.5,  # counters every controller layer counts into
    'controller/net': 1,
    'controller/store': 1,
    'controller/consensus': 2,
    'controller/auth': 2,
    'controller/logs': 2,
    'controller/status': 3,
    'controller/vip': 3,
    'controller/se_channel': 3,
    'controller/api': 4,
    'controller': 5,  # the daemon: main, options, credentials
    'se': 1,
    'cli': 1,
}
# The programs are separate worlds: none includes another's headers.
WORLDS = {'controller': 'controller', 'se': 'se', 'cli': 'cli', 'common': None}
MAX_FILE_LINES = 1000
MAX_FUNCTION_LINES = 150
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(rel):
    """'controller/store/store.c' -> 'controller/store'."""
    return os.path.dirname(rel)


PARTS = {}  # file -> the module it is a part of (it includes that module's -int.h)


def module_of(rel):
    if rel in PARTS:
        return PARTS[rel]
    base = os.path.basename(rel)
    base = re.sub(r'(-int)?\.[ch]$', '', base)  # foo-t.h (types only) is a module of its own
    return os.path.join(folder_of(rel), base)


def find_parts(texts):
    """Fills PARTS from TEXTS ({file: its text})."""
    for rel, text in texts.items():
        base = os.path.basename(rel)
        for inc in INCLUDE.findall(text):
            m = re.match(r'(.*)-int\.h$', inc)
            if m and folder_of(inc) == folder_of(rel) and \
                    base.startswith(os.path.basename(m.group(1)) + '_'):
                PARTS[rel] = m.group(1)


def functions(text):
    """(name, first line, length) of each function defined at column 0 (our style: the
    opening brace of a function on its own line at column 0, the closing one too)."""
    lines = text.split('\n')
    out = []
    start = None
    for i, line in enumerate(lines):
        if line == '{' and i > 0 and start is None:
            head = lines[i - 1]
            m = re.search(r'([A-Za-z_][A-Za-z0-9_]*)\s*\(', head)
            j = i - 1
            while m is None and j > 0 and not lines[j].startswith(('}', '#')):
                j -= 1
                m = re.search(r'([A-Za-z_][A-Za-z0-9_]*)\s*\(', lines[j])
            start = (m.group(1) if m else '?', i + 1)
        elif line.startswith('}') and start is not None:
            out.append((start[0], start[1], i + 1 - start[1] + 1))
            start = None
    return out


def main(src):
    breaches = []
    files = []
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith(('.c', '.h')):
                files.append(os.path.relpath(os.path.join(d, n), src))
    graph = {}
    texts = {rel: open(os.path.join(src, rel), encoding='utf-8').read() for rel in files}
    find_parts(texts)
    for rel in sorted(files):
        text = texts[rel]
        nlines = text.count('\n')
        if nlines > MAX_FILE_LINES:
            breaches.append(f'{rel}: {nlines} lines (at most {MAX_FILE_LINES})')
        for name, line, length in functions(text):
            if length > MAX_FUNCTION_LINES:
                breaches.append(f'{rel}:{line}: function {name} has {length} lines '
                                f'(at most {MAX_FUNCTION_LINES})')
        me = folder_of(rel)
        if me not in LAYERS:
            breaches.append(f'{rel}: folder {me} is not in the layer table (scripts/check_layout.py)')
            continue
        for inc in INCLUDE.findall(text):
            if not os.path.exists(os.path.join(src, inc)):
                continue  # a system header in quotes, or one of the same folder by name
            theirs = folder_of(inc)
            if theirs not in LAYERS:
                breaches.append(f'{rel}: includes {inc} from a folder outside the layer table')
                continue
            world_me, world_them = me.split('/')[0], theirs.split('/')[0]
            if world_them != 'common' and world_them != world_me:
                breaches.append(f'{rel}: includes {inc} of another program ({world_them})')
            elif theirs != me and LAYERS[theirs] >= LAYERS[me]:
                breaches.append(f'{rel}: includes {inc}: {theirs} (layer {LAYERS[theirs]}) '
                                f'is not below {me} (layer {LAYERS[me]})')
            if module_of(inc) != module_of(rel):
                graph.setdefault(module_of(rel), set()).add(module_of(inc))
    breaches += cycles(graph)
    for b in breaches:
        print(b)
    if breaches:
        return 1
    print(f'layout: {len(files)} files, {len(graph)} modules with includes: layers respected, '
          f'no include circle, files <= {MAX_FILE_LINES} lines, functions <= {MAX_FUNCTION_LINES}')
    return 0


def cycles(graph):
    """One line for each include circle between modules found by a depth-first walk."""
    found, state, stack = [], {}, []

    def walk(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                circle = stack[stack.index(n):] + [n]
                found.append('include circle: ' + ' -> '.join(circle))
            elif n not in state:
                walk(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
    return found


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else 'src'))
