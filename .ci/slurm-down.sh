#!/usr/bin/env bash
# Stops the CI Slurm of .ci/slurm-up.sh (run as root).
for d in slurmd slurmctld munged; do
  pkill -x "$d" 2>/dev/null || true
done
for _ in $(seq 1 20); do
  pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || exit 0
  sleep 0.5
done
exit 0
