#!/usr/bin/env bash
# Issue 16's figures on a machine with a real GPU (H100/H200), in one go: run it there, copy the table
# into BENCHMARKS.md with the machine's name.
#
#   bash scripts/gpu-bench.sh [OUT_DIR]          # default: $OUT if set, else target/gpu-bench
#
# It builds the release binary (if needed), then records, each with its command:
#   1. bench-kernel 16,384 x 8,192 (topology-pack), both backends, with the crossover sweep and the
#      crossover `--backend auto` measures;
#   2. the default-trace frag-study grid (6 policies x seeds 42..51 = 60 experiments) on the GPU and on
#      the CPU, wall time and experiments per second, and that the CSVs are byte-identical;
#   3. `run workloads/ultrascale-week.toml` with `--backend auto` and `--backend cpu`: wall time, and that
#      jobs.csv and placements.csv are byte-identical.
# Nothing here needs the network. Every step has a time limit so one slow step cannot eat the session.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-target/gpu-bench}}"
mkdir -p "$out"
log="$out/gpu-bench.txt"
: >"$log"
say() { echo "$*" | tee -a "$log"; }

if [ ! -x target/release/ultrasched ]; then
  cargo build --release -q || { say "build failed"; exit 1; }
fi
bin=target/release/ultrasched
say "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
say "== date: $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

timed() { # name, limit_s, command...
  local name="$1" limit="$2"
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$out/$name.out" 2>"$out/$name.err"
  local rc=$?
  t1=$(date +%s.%N)
  say "$name: exit $rc, $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s: $*"
  return $rc
}

say "== 1. bench-kernel 16384 x 8192"
timed bench-kernel 240 "$bin" bench-kernel --jobs 16384 --candidates 8192 --reps 5 --crossover
cat "$out/bench-kernel.out" >>"$log"
timed bench-kernel-json 240 "$bin" bench-kernel --jobs 16384 --candidates 8192 --reps 5 --crossover --format json

say "== 2. frag-study, default trace, 60 experiments"
T=workloads/traces/openb
for b in cpu gpu; do
  timed "frag-$b" 300 "$bin" frag-study --nodes "$T/openb_node_list_gpu_node.csv" \
    --pods "$T/openb_pod_list_default.csv" --seed 42..51 --backend "$b" \
    --csv "$out/frag-$b.csv" --frag-csv "$out/frag-curve-$b.csv"
  tail -3 "$out/frag-$b.err" >>"$log"
done
if cmp -s "$out/frag-cpu.csv" "$out/frag-gpu.csv" && cmp -s "$out/frag-curve-cpu.csv" "$out/frag-curve-gpu.csv"; then
  say "frag-study: gpu and cpu CSVs identical"
else
  say "frag-study: gpu and cpu CSVs DIFFER"
fi

say "== 3. ultrascale-week, auto vs cpu"
for b in auto cpu; do
  timed "week-$b" 300 "$bin" run workloads/ultrascale-week.toml --backend "$b" --quiet --out "$out/week-$b"
  head -1 "$out/week-$b.err" >>"$log"
done
for f in jobs.csv placements.csv; do
  if cmp -s "$out/week-auto/$f" "$out/week-cpu/$f"; then say "week $f: identical"; else say "week $f: DIFFERS"; fi
done
python3 - "$out" <<'EOF' | tee -a "$log"
import json, sys
for b in ("auto", "cpu"):
    try:
        run = json.load(open(f"{sys.argv[1]}/week-{b}/report.json"))["run"]
        print(b, "wall_s", run.get("wall_s"), "kernel_usage", run.get("kernel_usage"))
    except Exception as e:  # a step that timed out leaves no report
        print(b, "no report:", e)
EOF
say "== done: $log"
