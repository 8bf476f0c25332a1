"""A strict parser of the Prometheus text exposition format (version 0.0.4), for the tests
of vigild's and vigil-se's GET /metrics: HELP and TYPE once per family and before its
samples, a family's samples together, the metric and label name grammar, only the three
label escapes, no sample twice, counters named _total, histograms with ascending le,
cumulative buckets and +Inf equal to _count; and the project's conventions (names
prefixed vigil_, base units). parse() raises ParseError on any breach."""

import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
# Units the conventions say are not base units.
NOT_BASE_UNITS = re.compile(r"_(ms|milliseconds|microseconds|us|ns|minutes|hours|kb|mb|gb|"
                            r"kib|mib|kilobytes|megabytes|percent)(_|$)")


class ParseError(AssertionError):
    pass


def parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)", text):
        raise ParseError(f"{where}: bad value {text!r}")
    return float(text)


def parse_labels(text, where):
    """'a="x",b="y"' -> {"a": "x", "b": "y"}; only \\\\, \\" and \\n are escapes."""
    labels, i = {}, 0
    while i < len(text):
        m = re.compile(r"([^=,{}\"\s]+)=\"").match(text, i)
        if not m or not LABEL_NAME.match(m.group(1)) or m.group(1).startswith("__"):
            raise ParseError(f"{where}: bad label name at {text[i:]!r}")
        name, i, value = m.group(1), m.end(), []
        while True:
            if i >= len(text):
                raise ParseError(f"{where}: unterminated label value")
            c = text[i]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError(f"{where}: bad escape \\{nxt} in a label value")
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError(f"{where}: raw newline in a label value")
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ParseError(f"{where}: label {name} twice")
        labels[name] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise ParseError(f"{where}: expected ',' at {text[i:]!r}")
            i += 1
    return labels


def family_of(sample_name, families):
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name[:-len(suffix)] if sample_name.endswith(suffix) else None
        if base and families.get(base, {}).get("type") == "histogram":
            return base
    return sample_name


def parse(text):
    """The exposition TEXT -> {family: {"type", "help", "samples": [(name, labels, value)]}}.
    Raises ParseError on anything the format does not allow."""
    if not text.endswith("\n"):
        raise ParseError("the text does not end with a newline")
    families, seen_samples, closed, current = {}, set(), set(), None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) ?(.*)", line)
            if not m:
                raise ParseError(f"{where}: a comment that is not HELP or TYPE")
            kind, name, rest = m.groups()
            if not NAME.match(name):
                raise ParseError(f"{where}: bad metric name")
            fam = families.setdefault(name, {"samples": []})
            if name in closed or fam["samples"]:
                raise ParseError(f"{where}: {kind} after the family's samples")
            key = kind.lower()
            if key in fam:
                raise ParseError(f"{where}: second {kind} for {name}")
            if kind == "TYPE" and rest not in TYPES:
                raise ParseError(f"{where}: unknown type")
            if kind == "HELP" and re.search(r"\\[^\\n]", rest):
                raise ParseError(f"{where}: bad escape in HELP")
            fam[key] = rest
            if current is not None and current != name:
                closed.add(current)
            current = name
            continue
        if line == "":
            raise ParseError(f"{where}: empty line")
        m = re.fullmatch(r"([^{\s]+)(\{(.*)\})? (\S+)( -?\d+)?", line)
        if not m:
            raise ParseError(f"{where}: not a sample line")
        name, _, label_text, value_text, _ = m.groups()
        if not NAME.match(name):
            raise ParseError(f"{where}: bad metric name")
        labels = parse_labels(label_text or "", where)
        value = parse_value(value_text, where)
        fam_name = family_of(name, families)
        if fam_name not in families or "type" not in families[fam_name]:
            raise ParseError(f"{where}: sample before its family's TYPE")
        if fam_name in closed:
            raise ParseError(f"{where}: the family's samples are not together")
        if current != fam_name:
            if current is not None:
                closed.add(current)
            current = fam_name
        key = (name, tuple(sorted(labels.items())))
        if key in seen_samples:
            raise ParseError(f"{where}: the same sample twice")
        seen_samples.add(key)
        families[fam_name]["samples"].append((name, labels, value))
    for name, fam in families.items():
        check_family(name, fam)
    return families


def check_family(name, fam):
    if "type" not in fam or "help" not in fam:
        raise ParseError(f"{name}: HELP or TYPE missing")
    if not name.startswith("vigil_"):
        raise ParseError(f"{name}: not prefixed vigil_")
    if NOT_BASE_UNITS.search(name):
        raise ParseError(f"{name}: not in a base unit")
    if fam["type"] == "counter" and not name.endswith("_total"):
        raise ParseError(f"{name}: a counter not named _total")
    if fam["type"] != "counter" and name.endswith("_total"):
        raise ParseError(f"{name}: _total on a {fam['type']}")
    for sname, labels, value in fam["samples"]:
        if fam["type"] == "counter" and (value < 0 or math.isnan(value)):
            raise ParseError(f"{sname}: a counter at {value}")
    if fam["type"] == "histogram":
        check_histogram(name, fam["samples"])


def check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            if "le" not in labels:
                raise ParseError(f"{name}: a bucket without le")
            s["buckets"].append((parse_value(labels["le"], name), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
        else:
            raise ParseError(f"{name}: stray sample {sname}")
    for rest, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        if not les or les[-1] != math.inf:
            raise ParseError(f"{name}{rest}: no +Inf bucket last")
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError(f"{name}{rest}: le not ascending")
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ParseError(f"{name}{rest}: buckets not cumulative: {counts}")
        if s["count"] is None or s["sum"] is None:
            raise ParseError(f"{name}{rest}: _sum or _count missing")
        if counts[-1] != s["count"]:
            raise ParseError(f"{name}{rest}: +Inf bucket {counts[-1]} != _count {s['count']}")
