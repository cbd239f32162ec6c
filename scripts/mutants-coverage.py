#!/usr/bin/env python3
"""What the recorded mutation runs say about a group as it is now, and which mutants no run has tested (issue 17).

    python3 scripts/mutants-coverage.py engine > /tmp/untested.txt     # the tally on stderr
    NAMES=/tmp/untested.txt ONLY=engine JOBS=2 bash scripts/mutants.sh OUT

Each docs/mutants/<group>-*.txt records the outcomes of one run and names, in its first lines, the commit
whose source it tested ("commit abc1234"). Line numbers move between commits, so a mutant is matched by
its file, its description (`replace X with Y in F`) and its rank among the mutants of that file with the
same description, counted over the whole list at that commit (`cargo mutants --list` on a `git archive`
of it). The working tree's list is ranked the same way; a mutant is tested when some run's mutant has the
same file, description and rank. A mutant whose function changed since keeps its match: the figure says
which mutants were run, not that the code they mutated is unchanged.

A record's lines are `caught|missed|timeout|unviable: NAME` (cargo-mutants' outcome), `re-run OUTCOME: NAME`
(a timeout run again with a longer limit) and `fate killed|equivalent|left: NAME -- why` (what became of a
survivor: killed by a test added or run since, equivalent, or left). Where several runs tested one
mutant, the one at the newest commit counts. The tally counts caught, timed-out and killed mutants as
caught; equivalent ones as not caught (they are shown apart).

Prints the untested names (as `cargo mutants --list` prints them) on stdout and the tally on stderr;
with `--show OUTCOME` (one of the outcomes above, e.g. `--show equivalent`), the names whose outcome is
that one instead.
Needs git and cargo-mutants; reads no network.
"""

import collections
import pathlib
import re
import subprocess
import sys
import tempfile

# A group line of scripts/mutants.sh's `runs` array: "name|files|cargo test arguments[|name filter]".
GROUP = re.compile(r'^\s*"([\w-]+)\|([^|]+)\|([^|"]*)(?:\|(.*))?"\s*$')
NAME = re.compile(r"(?:(\w+): )?(src/[^:]+):(\d+):(\d+): (.*)$")
RECORD = re.compile(r"(re-run |fate )?(\w+): (src/.*?)(?: -- .*)?$")
ORDER = ["caught", "timeout", "killed", "equivalent", "left", "missed", "unviable"]
COMMIT = re.compile(r"commit ([0-9a-f]{7,40})")


def mutant_list(tree, files, name_filter=None):
    args = ["cargo", "mutants", "--list"]
    for f in files:
        args += ["-f", f]
    if name_filter:
        args += ["-F", name_filter]
    out = subprocess.run(args, cwd=tree, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("src/")]


def ranked(names):
    """name -> (file, description, rank among that file's mutants with the same description)"""
    parsed = []
    for name in names:
        m = NAME.match(name.strip())
        if m:
            parsed.append((m.group(2), int(m.group(3)), int(m.group(4)), m.group(5), name.strip()))
    seen = collections.Counter()
    out = {}
    for file, line, col, desc, name in sorted(parsed):
        out[name] = (file, desc, seen[(file, desc)])
        seen[(file, desc)] += 1
    return out


def groups(root):
    """The groups scripts/mutants.sh runs: their files and name filter (a shell double-quoted string there,
    so `\\\\` stands for one backslash), read from it (one list for both scripts)."""
    text = (root / "scripts" / "mutants.sh").read_text()
    return {
        m.group(1): (m.group(2).split(), (m.group(4) or "").replace("\\\\", "\\") or None)
        for line in text.splitlines()
        for m in [GROUP.match(line)]
        if m
    }


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    known = groups(root)
    args = sys.argv[1:]
    show = None
    if len(args) == 3 and args[1] == "--show" and args[2] in ORDER:
        show = args.pop()
        args.pop()
    if len(args) != 1 or args[0] not in known:
        print(f"usage: {sys.argv[0]} {{{','.join(known)}}} [--show {{{','.join(ORDER)}}}]", file=sys.stderr)
        return 2
    group = args[0]
    files, name_filter = known[group]
    head = ranked(mutant_list(root, files, name_filter))
    lists = {}
    runs = []
    for record in sorted((root / "docs" / "mutants").glob(f"{group}-*.txt")):
        text = record.read_text().splitlines()
        commit = next((m.group(1) for line in text[:3] for m in [COMMIT.search(line)] if m), None)
        if commit is None:
            print(f"{record.name}: no commit named in its first lines; left out", file=sys.stderr)
            continue
        when = int(subprocess.run(["git", "log", "-1", "--format=%ct", commit], cwd=root, check=True,
                                  capture_output=True, text=True).stdout)
        runs.append((when, record.name, commit, text))
    outcome = {}  # key at HEAD -> (commit time, outcome)
    for when, name_of_record, commit, text in sorted(runs):
        if commit not in lists:
            with tempfile.TemporaryDirectory() as tree:
                archive = subprocess.run(["git", "archive", commit], cwd=root, check=True, capture_output=True).stdout
                subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
                lists[commit] = ranked(mutant_list(tree, files, name_filter))
        at_commit = lists[commit]
        seen, unknown = set(), 0
        for line in text:
            m = RECORD.match(line)
            if not m or m.group(2) not in ORDER + ["re-run"]:
                continue
            if m.group(3) not in at_commit:
                unknown += 1
                continue
            key = at_commit[m.group(3)]
            if m.group(1) is None:
                seen.add(key)
            outcome[key] = (when, m.group(2))
        print(f"{name_of_record}: {len(seen)} mutants at {commit}" + (f", {unknown} lines name none of its list" if unknown else ""),
              file=sys.stderr)
    tally = {o: 0 for o in ORDER}
    untested = []
    shown = []
    for name, key in head.items():
        if key in outcome:
            tally[outcome[key][1]] += 1
            if outcome[key][1] == show:
                shown.append(name)
        else:
            untested.append(name)
    tested = len(head) - len(untested)
    viable = tested - tally["unviable"]
    caught = tally["caught"] + tally["timeout"] + tally["killed"]
    pct = lambda a, b: f"{100 * a / b:.1f} %" if b else "-"
    print(f"{group}: {len(head)} mutants in the working tree; {tested} tested by some recorded run, {len(untested)} untested", file=sys.stderr)
    print("  " + ", ".join(f"{o} {tally[o]}" for o in ORDER), file=sys.stderr)
    print(f"  caught, timed out or killed since: {caught} of {viable} viable ({pct(caught, viable)}); "
          f"of the non-equivalent: {pct(caught, viable - tally['equivalent'])}; "
          f"survivors with no fate recorded: {tally['missed']}", file=sys.stderr)
    for name in sorted(shown if show else untested, key=lambda n: (head[n][0], int(NAME.match(n).group(3)), int(NAME.match(n).group(4)), n)):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
