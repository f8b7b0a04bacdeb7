#!/usr/bin/env bash
# Serve AlgoMirror for development: the paper broker in the background, the app in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(command -v uv || echo .tools/bin/uv)"
mkdir -p instance logs

# The paper broker's admin token lives beside the app's secrets (mode 0600), so the app can
# provision paper accounts on it.
token_file=instance/paperbroker_admin_token
if [ ! -s "$token_file" ]; then
  (umask 077; "$UV" run python -c "import secrets; print(secrets.token_urlsafe(24))" > "$token_file")
fi
export PAPERBROKER_ADMIN_TOKEN="$(cat "$token_file")"
export PAPER_BROKER_URL="${PAPER_BROKER_URL:-http://127.0.0.1:${PAPERBROKER_PORT:-5100}}"
export PAPER_BROKER_WS_URL="${PAPER_BROKER_WS_URL:-ws://127.0.0.1:${PAPERBROKER_WS_PORT:-8770}}"

broker_log=logs/paperbroker.log
: > "$broker_log"
"$UV" run python -m paperbroker --port "${PAPERBROKER_PORT:-5100}" --ws-port "${PAPERBROKER_WS_PORT:-8770}" \
  --state instance/paperbroker.db --accounts 1 >>"$broker_log" 2>&1 &
broker_pid=$!
cleanup() { kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 1 50); do
  grep -q "^paperbroker ready" "$broker_log" && break
  kill -0 "$broker_pid" 2>/dev/null || { echo "paper broker failed to start; see $broker_log"; break; }
  sleep 0.2
done
if grep -q "^paperbroker ready" "$broker_log"; then
  echo "Paper broker: $(grep '^paperbroker ready' "$broker_log" | cut -d' ' -f3-4)"
  grep '^api_key=' "$broker_log" | sed 's/^/  paper account /' || true
fi

echo "AlgoMirror on http://${HOST:-127.0.0.1}:${PORT:-8000}"
"$UV" run python app.py
