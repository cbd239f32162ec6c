#!/usr/bin/env bash
# Real-browser check of report.html: renders the report of a bundled workload in headless Chromium, checks
# from the loaded DOM that every plot is a non-empty SVG with real coordinates, fails on console errors or
# any attempt to load something (the page must be self-contained), and keeps a screenshot at
# target/report-screenshot.png. Installs Debian's chromium when it is missing; if that fails, it fails:
# CI must not pass without a browser having looked at the page.
#
# Usage: .ci/report-browser-check.sh [WORKLOAD]   (default workloads/mixed-fleet.toml: both job kinds, two pools)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive CARGO_TERM_COLOR=never

workload="${1:-workloads/mixed-fleet.toml}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

fail() {
  echo "report-browser-check: FAIL: $*" >&2
  exit 1
}

find_browser() {
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then
      command -v "$b"
      return 0
    fi
  done
  return 1
}

if ! browser="$(find_browser)"; then
  echo "== installing chromium (Debian package)"
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
    fail "chromium is not installed and 'apt-get install chromium' failed; install it (Debian: apt-get install chromium) and rerun"
  fi
  browser="$(find_browser)" || fail "chromium was installed but no chromium binary is on PATH"
fi
command -v python3 >/dev/null 2>&1 || fail "python3 is needed to check the DOM (apt-get install python3)"
echo "== browser: $("$browser" --version 2>/dev/null || echo "$browser")"

echo "== building and running $workload"
cargo build --release -q
out=target/report-check
rm -rf "$out"
./target/release/ultrasched run "$workload" --backend cpu --quiet --out "$out" >/dev/null
[ -s "$out/report.html" ] || fail "$out/report.html was not written"
url="file://$PWD/$out/report.html"

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# Any host lookup fails, so a page that reaches for the network logs an error instead of quietly loading.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$profile" --enable-logging=stderr --v=0
  --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars)

echo "== loading $url"
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$out/dom.html" 2>"$out/browser-dom.log" ||
  fail "chromium --dump-dom failed (log: $out/browser-dom.log)"
rm -f target/report-screenshot.png
timeout 120 "$browser" "${flags[@]}" --window-size=1400,2400 --screenshot="$PWD/target/report-screenshot.png" "$url" \
  >/dev/null 2>"$out/browser-shot.log" || fail "chromium --screenshot failed (log: $out/browser-shot.log)"

echo "== console errors"
if grep -hE "Uncaught|ERROR:CONSOLE|CONSOLE.*(Error|error)|Failed to load resource|net::ERR_" \
  "$out/browser-dom.log" "$out/browser-shot.log"; then
  fail "the page logged errors or tried to load something (above)"
fi

echo "== plots in the rendered DOM"
python3 - "$out/dom.html" <<'EOF'
import re, sys
from html.parser import HTMLParser

class Svgs(HTMLParser):
    """Collects, per <svg>, its aria-label and the coordinates of its drawn shapes."""
    def __init__(self):
        super().__init__()
        self.svgs, self.cur = [], None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.cur = {"label": a.get("aria-label", "?"), "paths": [], "rects": []}
            self.svgs.append(self.cur)
        elif self.cur is not None and tag == "path":
            self.cur["paths"].append(a.get("d", ""))
        elif self.cur is not None and tag == "rect":
            self.cur["rects"].append(a)
    def handle_endtag(self, tag):
        if tag == "svg":
            self.cur = None

dom = open(sys.argv[1], encoding="utf-8").read()
p = Svgs()
p.feed(dom)
expected = ["GPU utilisation over time", "Queue length over time", "Job completion time CDF per job kind",
            "Wait CDF per job kind", "Occupancy per NVLink domain over time"]
labels = [s["label"] for s in p.svgs]
errors = []
for e in expected:
    if e not in labels:
        errors.append(f"missing plot: {e!r} (found {labels})")
if "<script" in dom.lower():
    errors.append("the page has a <script>")
for s in p.svgs:
    nums = lambda d: [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]
    if s["label"].startswith("Occupancy"):
        # Busy cells: filled rectangles with a real size, other than the idle background and the frame.
        cells = [r for r in s["rects"] if r.get("fill", "").startswith("#") and r.get("fill") not in ("#ffffff", "#f7fafc")
                 and float(r.get("width", 0)) > 0 and float(r.get("height", 0)) > 0]
        if len(cells) < 20:
            errors.append(f"{s['label']}: only {len(cells)} busy cells")
    else:
        # Data lines have many points; legend swatches are 'M x yh18'.
        lines = [d for d in s["paths"] if len(nums(d)) >= 6]
        if not lines:
            errors.append(f"{s['label']}: no data line")
        for d in lines:
            v = nums(d)
            if "NaN" in d or len(set(v)) < 3:
                errors.append(f"{s['label']}: degenerate path {d[:80]!r}")
    print(f"  {s['label']}: {len(s['paths'])} paths, {len(s['rects'])} rects")
if errors:
    print("\n".join("  ERROR " + e for e in errors))
    sys.exit(1)
EOF

echo "== screenshot"
[ -s target/report-screenshot.png ] || fail "no screenshot was written"
if [ "$(head -c 8 target/report-screenshot.png | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
  fail "target/report-screenshot.png is not a PNG"
fi
echo "  target/report-screenshot.png ($(wc -c <target/report-screenshot.png) bytes)"
echo "report-browser-check: ok"
