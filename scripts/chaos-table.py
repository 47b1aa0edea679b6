#!/usr/bin/env python3
"""Prints the chaos suite's outcomes (JSON lines written by the tests) as a Markdown table.

    scripts/chaos-table.py REPORT.jsonl

One row per scenario, in the issue's order (faults, outages, poison, bad input). Exits 1 when any scenario lost
or duplicated an item, so `make chaos` fails loudly even if a test's own check did not.
"""
import json
import sys


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def reasons(row):
    found = row.get("reasons") or []
    if not found:
        return ""
    shown = [r if len(r) <= 48 else r[:45] + "..." for r in found[:2]]
    more = " +%d more" % (len(found) - 2) if len(found) > 2 else ""
    return " (" + "; ".join(shown) + more + ")"


ORDER = ["worker SIGKILL mid-image", "worker SIGKILL mid-upload", "worker SIGKILL mid-download", "pod reclaim",
         "GPU failure", "RabbitMQ", "PostgreSQL", "ingest server", "server refused", "upload gone silent", "poison",
         "bad input: SQL", "bad input: AMQP", "bad input: HTTP", "bad input: CLI"]


def rank(row):
    for index, prefix in enumerate(ORDER):
        if row["scenario"].startswith(prefix):
            return index
    return len(ORDER)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: chaos-table.py REPORT.jsonl")
    rows = sorted((json.loads(line) for line in open(sys.argv[1]) if line.strip()), key=rank)
    print("| Scenario | Enqueued | Done | Dead-lettered | Bad inputs refused (reasons) | Lost | Duplicated | Redone | Recovered in |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    bad = 0
    for row in rows:
        recovery = row.get("recoverySeconds")
        refused = row.get("refused")
        redone = row.get("redone")
        print("| %s | %d | %d | %s | %s | %d | %d | %s | %s |" % (
            cell(row["scenario"]), row["enqueued"], row["done"],
            # The reasons go with the refusals where there are any, else with the dead letters.
            cell("%d%s" % (row["deadLettered"], reasons(row) if refused is None else "")),
            "-" if refused is None else cell("%d%s" % (refused, reasons(row))), row["lost"], row["duplicated"],
            "-" if redone is None else redone,
            "-" if recovery is None else "%.1f s" % recovery))
        if row["lost"] or row["duplicated"]:
            bad += 1
    notes = [row for row in rows if row.get("note")]
    if notes:
        print()
        for row in notes:
            print("- %s: %s" % (row["scenario"], row["note"]))
    if bad:
        print("\n%d scenario(s) lost or duplicated work" % bad, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
