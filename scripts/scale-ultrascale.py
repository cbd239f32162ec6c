#!/usr/bin/env python3
"""Writes scaled copies of workloads/ultrascale-week.toml for issue 11's linear-cost table.

    python3 scripts/scale-ultrascale.py OUT_DIR [--load 1.0]

For each f in 1/8, 1/4, 1/2, 1 it writes OUT_DIR/ultrascale-f<f>.toml with the NVLink domains, the
generated jobs (count and arrival rate), the pre-training and RL gangs (GPUs, rounded to whole 72-GPU
domains, and rollout replicas), the inference replicas and their traffic all multiplied by f. `--load`
multiplies the generated jobs' arrival rate on top (the light series uses 0.6). The 8-2,304-GPU job mix
is unchanged, so a small fleet fragments more: the "same" load is not exactly the same utilisation.
Then time each with `ultrasched run FILE --backend cpu --quiet --format json`.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "workloads" / "ultrascale-week.toml"


def scale_line(line: str, f: float, load: float, section: str) -> str:
    def sub(key, fn):
        nonlocal line
        m = re.match(rf"^(\s*{key}\s*=\s*)([0-9.]+)(.*)$", line)
        if m:
            line = f"{m.group(1)}{fn(float(m.group(2)))}{m.group(3)}"

    whole = lambda x: max(1, round(x * f))
    if section == "cluster.pools":
        sub("count", lambda x: whole(x))
    elif section == "generators":
        sub("count", lambda x: whole(x))
        sub("rate_per_hour", lambda x: f"{x * f * load:g}")
    elif section == "jobs":
        sub("gpus", lambda x: max(72, round(x * f / 72) * 72) if x >= 1024 else int(x))
        sub("replicas", lambda x: whole(x))
    # inline tables: RL rollout replicas and service traffic rates
    line = re.sub(r"rollout_replicas = (\d+)", lambda m: f"rollout_replicas = {whole(int(m.group(1)))}", line)
    line = re.sub(r"(sessions_per_s|rate_per_s) = ([0-9.]+)", lambda m: f"{m.group(1)} = {float(m.group(2)) * f:g}", line)
    return line


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    load = float(sys.argv[sys.argv.index("--load") + 1]) if "--load" in sys.argv else 1.0
    out.mkdir(parents=True, exist_ok=True)
    text = SRC.read_text().splitlines()
    for name, f in [("1-8", 1 / 8), ("1-4", 1 / 4), ("1-2", 1 / 2), ("1", 1.0)]:
        section, lines = "", []
        for line in text:
            m = re.match(r"^\s*\[\[?([a-z._]+)\]\]?", line)
            if m:
                section = m.group(1)
            lines.append(scale_line(line, f, load, section))
        path = out / f"ultrascale-f{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
