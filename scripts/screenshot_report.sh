#!/usr/bin/env bash
# Render a run report in headless Chromium and save a PNG: proof that the page draws offline, with
# no script and no network. Given a folder, (re)builds its report.html with `gemmaflow report` first.
#
# usage: scripts/screenshot_report.sh RUN_DIR|REPORT.html OUT.png [HEIGHT_PX]
#   scripts/screenshot_report.sh runs/demo/ /tmp/report.png
#   gemmaflow curate --output /tmp/c && scripts/screenshot_report.sh /tmp/c /tmp/c.png
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,8p' "$0" >&2
    exit 2
fi
target=$1
out=$(realpath -m "$2")
height=${3:-9000}
if [[ -d $target ]]; then
    gemmaflow=${GEMMAFLOW:-$(command -v gemmaflow || echo "$(dirname "$0")/../.venv/bin/gemmaflow")}
    "$gemmaflow" report "$target" >/dev/null
    target=$target/report.html
fi
report=$(realpath "$target")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $browser ]]; then
    echo "no Chromium found; on Debian: apt-get install chromium" >&2
    exit 2
fi
# Chromium logs D-Bus complaints in containers; they are noise, the PNG is the result.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="1400,$height" \
    --screenshot="$out" "file://$report" >/dev/null 2>&1
[[ -s $out ]] || { echo "Chromium wrote no screenshot to $out" >&2; exit 1; }
echo "wrote $out"
