#!/usr/bin/env bash
# Serve AlgoMirror for development: the paper broker in the background, the app in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(command -v uv || echo .tools/bin/uv)"
mkdir -p instance logs

broker_pid=""
if "$UV" run python -c "import paperbroker.server" 2>/dev/null; then
  "$UV" run python -m paperbroker --state instance/paperbroker.db >>logs/paperbroker.log 2>&1 &
  broker_pid=$!
  echo "Paper broker started (pid $broker_pid), log in logs/paperbroker.log"
fi
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "AlgoMirror on http://${HOST:-127.0.0.1}:${PORT:-8000}"
"$UV" run python app.py
