#!/usr/bin/env python3
"""Labels per series of a Prometheus exposition (make demo prints it at the end; issue 16).

Reads the exposition on stdin (or a file argument) and prints, for health series (iiot_device_*), readings
(everything else) and every metric family: the number of series and the min / median / max number of
labels per series, plus the labels every series carries. target_info and otel_scope_info are counted
apart: they are the one-per-device / one-per-scope series the lean labels move the rest to.
"""
import re
import statistics
import sys
from collections import defaultdict

LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
INFO = {"target_info", "otel_scope_info"}


def parse(lines):
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, brace, rest = line.partition("{")
        labels = {}
        if brace:
            labels = dict(LABEL.findall(rest[: rest.rfind("}")]))
        else:
            name = name.split()[0]
        # a histogram or summary is one family: its _bucket/_sum/_count series are counted as such.
        yield name, labels


def row(title, counts):
    return "   %-52s %6d %5d %6g %5d" % (title, len(counts), min(counts), statistics.median(counts), max(counts))


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    groups = defaultdict(list)
    families = defaultdict(list)
    label_sets = defaultdict(list)
    info = defaultdict(int)
    for name, labels in parse(src):
        if name in INFO:
            info[name] += 1
            continue
        group = "health (iiot_device_*)" if name.startswith("iiot_device_") else "readings"
        groups[group].append(len(labels))
        groups["all device series"].append(len(labels))
        families[name].append(len(labels))
        label_sets["all"].append(set(labels))
    if not families:
        print("   no series")
        return 1
    print("   %-52s %6s %5s %6s %5s" % ("labels per series", "series", "min", "median", "max"))
    for g in ("health (iiot_device_*)", "readings", "all device series"):
        if groups[g]:
            print(row(g, groups[g]))
    for name in sorted(families):
        print(row("  " + name, families[name]))
    common = set.intersection(*label_sets["all"])
    print("   labels on every series: %s" % ", ".join(sorted(common)))
    print("   info series: %s" % (", ".join("%s %d" % kv for kv in sorted(info.items())) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
