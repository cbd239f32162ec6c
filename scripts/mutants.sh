#!/usr/bin/env bash
# Mutation testing (issue 17, item 7): cargo-mutants over the modules that decide a schedule or judge one:
# the cluster engine, its queue and placement, the CPU twin of the placement kernel and the independent
# checker. Each module is run against the tests that are meant to catch its mistakes (the whole suite
# would take hours per module on a small machine). Not in CI: it is slow.
#
#   bash scripts/mutants.sh [OUT_DIR] [SHARD]        # SHARD: k/n runs every n-th mutant (round robin)
#   bash scripts/mutants.sh target/mutants-out 0/5   # a one-in-five sample
#
# TIMEOUT=seconds (default 120) bounds one mutant's tests: a mutant that loops forever counts as a timeout.
# JOBS=n (default 1; not with --in-place) tests n mutants at once, each in its own build directory (cargo mutants --jobs).
# NAMES=file tests only the mutants named in file, one name per line as `cargo mutants --list` prints it
# (each becomes an anchored, escaped `-F` regex): e.g. the ones no earlier run has tested.
# MUTANTS_ARGS="..." adds arguments to each cargo mutants call, e.g. "--in-place --baseline skip" to mutate
# this tree and reuse its target/mutants build (no copy, no baseline build; edit nothing while it runs).
# Needs `cargo install cargo-mutants` (27.x). Results: OUT_DIR/<name>/mutants.out/{caught,missed,timeout,
# unviable}.txt, and a summary line per module on stdout. TESTING.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/mutants-out}"
shard="${2:-}"
mkdir -p "$out"
command -v cargo-mutants >/dev/null || { echo "cargo-mutants not found: cargo install cargo-mutants" >&2; exit 2; }

# name | files (-f, repeated) | cargo test arguments
runs=(
  "check|src/check/mod.rs|--lib --test check --test capacity"
  "engine|src/engine/cluster/mod.rs src/engine/cluster/queue.rs|--test engine --test schedule_props --test queues --test check --test capacity --test sharing --test reports --test failures"
  "placement|src/engine/cluster/placement.rs src/kernel/placement/mod.rs|--test engine --test kernel_conformance --test check --test capacity"
  "cpu-twin|src/kernel/placement/cpu.rs|--lib --test kernel_conformance --test engine"
  # The serving router and its first-block index; sim.rs is the whole serving simulator, so only the
  # mutants of the router's functions (the fourth field: a regex on mutant names, unless NAMES is set).
  "router|src/engine/serving/sim/first_blocks.rs src/engine/serving/sim.rs|--lib --test agentic --test inference|first_blocks\\.rs|Sim<'a>::(route|refresh_routing)( |$)"
  # The prefix cache's blocks and LRU (sim.rs), and the latency summaries' merge of sorted runs (metrics.rs).
  "prefix-cache|src/engine/serving/sim.rs src/engine/cluster/metrics.rs|--lib --test agentic --test inference|PrefixCache::|merge_sorted|Stats::of"
)
for spec in "${runs[@]}"; do
  IFS='|' read -r name files tests filter <<<"$spec"
  only="${ONLY:-}"
  if [ -n "$only" ] && [ "$only" != "$name" ]; then continue; fi
  args=()
  for f in $files; do args+=(-f "$f"); done
  # The test selection goes to every cargo call (`-C`), so a mutant rebuilds only the library and those
  # test binaries (seconds), not every test target of the crate (minutes).
  for t in $tests; do
    case "$t" in
      --test) ;;
      --lib) args+=("-C=--lib") ;;
      *) args+=("-C=--test=$t") ;;
    esac
  done
  if [ -n "$shard" ]; then args+=(--shard "$shard" --sharding round-robin); fi
  if [ -n "${NAMES:-}" ]; then
    # Escape what the regex crate treats as syntax (its `regex::escape` set), then anchor the name.
    while IFS= read -r mutant; do
      [ -n "$mutant" ] || continue
      args+=(-F "^$(printf '%s' "$mutant" | sed -e 's/[][\\.+*?(){}|^$#&~-]/\\&/g')\$")
    done <"$NAMES"
  fi
  if [ -z "${NAMES:-}" ] && [ -n "$filter" ]; then args+=(-F "$filter"); fi
  echo "== $name: ${files} (tests: $tests)"
  # Exit codes 2 (mutants missed) and 3 (timeouts) are results, not failures of the script.
  # `--profile mutants` (Cargo.toml: opt-level 1, no debug info): the engine tests take ~4 s instead of
  # ~45 s in a debug build, and a mutant's rebuild ~10 s.
  cargo mutants "${args[@]}" --profile mutants --no-shuffle --output "$out/$name" ${JOBS:+--jobs "$JOBS"} --timeout "${TIMEOUT:-120}" --build-timeout 600 \
    ${MUTANTS_ARGS:-} || rc=$?
  rc="${rc:-0}"
  if [ "$rc" != 0 ] && [ "$rc" != 2 ] && [ "$rc" != 3 ]; then
    echo "cargo mutants failed for $name (exit $rc)" >&2
    exit "$rc"
  fi
  unset rc
  m="$out/$name/mutants.out"
  count() { [ -f "$m/$1.txt" ] && wc -l <"$m/$1.txt" || echo 0; }
  caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
  viable=$((caught + missed + timeout))
  echo "$name: caught $caught, missed $missed, timeout $timeout, unviable $unviable;" \
    "caught or timed out: $(( viable > 0 ? (100 * (caught + timeout)) / viable : 0 )) % of viable"
done
