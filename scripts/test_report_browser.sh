#!/usr/bin/env bash
# report.html in a real browser: build the quickstart, load its report.html in headless
# Chromium with networking off, and check the rendered DOM's numbers against
# report.json (python3, standard library only); take a screenshot as well.
#
# Chromium is installed with apt-get when it is missing and this runs as root
# (CURATE_NO_APT=1 forbids it); when it cannot be had the script prints SKIPPED and
# exits 0. Any other failure exits 1.
#
#   CURATE_BIN=target/debug/curate bash scripts/test_report_browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CURATE_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/curate}"
[ -x "$bin" ] || { echo "error: no curate binary at $bin (build it first)" >&2; exit 1; }

find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
chromium=$(find_chromium)
if [ -z "$chromium" ] && [ "$(id -u)" = 0 ] && [ "${CURATE_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (apt-get)" >&2
  { apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; } >/dev/null 2>&1 || true
  chromium=$(find_chromium)
fi
if [ -z "$chromium" ]; then
  echo "SKIPPED: report.html in headless Chromium: chromium is not installed and could not be installed" >&2
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" recipes/quickstart.toml --out "$work/qs" --quiet
page="$work/qs/report.html"
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --user-data-dir="$work/profile")
# The console and the network log: the page must log nothing and request nothing.
timeout 60 "$chromium" "${flags[@]}" --enable-logging=stderr --v=0 --log-net-log="$work/net.json" \
  --dump-dom "file://$page" > "$work/dom.html" 2>"$work/chromium.log" \
  || { cat "$work/chromium.log" >&2; echo "error: chromium could not render report.html" >&2; exit 1; }
timeout 60 "$chromium" "${flags[@]}" --window-size=1280,2000 --screenshot="$work/report.png" "file://$page" >/dev/null 2>>"$work/chromium.log" \
  || { cat "$work/chromium.log" >&2; echo "error: chromium could not take a screenshot" >&2; exit 1; }
[ -s "$work/report.png" ] || { echo "error: the screenshot is empty" >&2; exit 1; }
# Kept for a person to look at, beside the quickstart's outputs (recipes/out is ignored).
mkdir -p recipes/out/report-check && cp "$work/report.png" recipes/out/report-check/report.png

python3 - "$work/chromium.log" "$work/net.json" "$work/report.png" <<'CHECK'
import json, struct, sys, zlib

log, net, png = sys.argv[1:4]
errors = []
# The page has no scripts: any console message is a fault.
console = [l.strip() for l in open(log, errors="replace") if ":CONSOLE" in l]
if console:
    errors.append("console messages:\n    " + "\n    ".join(console[:5]))
# Requests the page made (the browser's own have no initiating origin).
for e in json.load(open(net)).get("events", []):
    p = e.get("params") or {}
    url, initiator = p.get("url", ""), p.get("initiator")
    if initiator is not None and initiator != "not an origin" and url.split(":")[0] in ("http", "https", "ws", "wss"):
        errors.append(f"the page requested {url} (initiator {initiator})")
# A screenshot that shows something: its pixels are not all one colour.
data = open(png, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    errors.append("the screenshot is not a PNG")
else:
    i, idat = 8, b""
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"IDAT":
            idat += data[i + 8:i + 8 + n]
        i += 12 + n
    distinct = len(set(zlib.decompress(idat)))
    if distinct < 16:
        errors.append(f"the screenshot looks blank ({distinct} distinct byte values)")
if errors:
    print("report.html in Chromium:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
print("report.html in Chromium: no console message, no request from the page, a non-blank screenshot (recipes/out/report-check/report.png)")
CHECK

python3 - "$work/dom.html" "$work/qs/report.json" "$work/qs/timings.json" <<'EOF'
import json, sys
from html.parser import HTMLParser

dom_path, report_path, timings_path = sys.argv[1], sys.argv[2], sys.argv[3]
report = json.load(open(report_path))
timings = json.load(open(timings_path))

class Tagged(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tagged, self.ids, self.stack = [], set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "data-k" in a:
            self.tagged.append([a["data-k"], a["data-v"], ""])
            self.stack.append(len(self.tagged) - 1)
        else:
            self.stack.append(None)
    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
    def handle_data(self, data):
        for i in self.stack:
            if i is not None:
                self.tagged[i][2] += data

p = Tagged()
p.feed(open(dom_path).read())

def at(v, path):
    for k in path.split("/"):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return v

errors = []
for key, value, text in p.tagged:
    if key.startswith("timings/"):
        # Seconds, shown to the millisecond; counts of tasks.
        want = at(timings, key[len("timings/"):])
        if isinstance(want, int):
            ok = int(value) == want and int(text.strip()) == want
        else:
            ok = abs(float(value) - want) < 1e-9 and text.strip() == f"{want:.3f}"
        if not ok:
            errors.append(f"{key}: page shows {text.strip()!r} (data-v {value!r}), timings.json has {want!r}")
        continue
    want = at(report, key)
    if isinstance(want, bool) or isinstance(want, str):
        ok = value == str(want) and text.strip().startswith(str(want))
    elif isinstance(want, int):
        ok = int(value) == want and int(text.replace(",", "").strip()) == want
    else:
        ok = abs(float(value) - want) < 1e-9 and text.strip() == f"{want * 100:.2f}%"
    if not ok:
        errors.append(f"{key}: page shows {text.strip()!r} (data-v {value!r}), report.json has {want!r}")
for section in ["summary", "funnel", "drops", "ledger-samples", "token-mix", "lengths", "near-dup",
                "contamination", "compliance", "obligations", "timings"]:
    if section not in p.ids:
        errors.append(f"section {section} is not in the rendered page")
for rule in report["drops"]:
    if f"rule-{rule}" not in p.ids:
        errors.append(f"rule {rule} has no ledger sample in the rendered page")
if len(p.tagged) < 10:
    errors.append(f"only {len(p.tagged)} tagged numbers in the rendered page")
if errors:
    print("report.html in Chromium:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"report.html in Chromium: {len(p.tagged)} numbers agree with report.json and timings.json, {len(p.ids)} ids")
EOF
