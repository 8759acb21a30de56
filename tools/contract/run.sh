#!/usr/bin/env bash
# Checks openapi.yaml the way client developers use it (make contract; run by
# .ci/run). Needs Go, Node.js 20 or newer and npm; the npm packages are the
# exact versions in package-lock.json.
#  1. Redocly's lint, recommended rules as errors (redocly.yaml);
#  2. openapi-typescript's types (gen/api.d.ts), against which tsc compiles a
#     typed client (contract.test.ts);
#  3. that client's calls, by node's test runner, to the real service (the
#     demo model, catalogue writes on) through Prism's proxy, which reports
#     every answer that breaks the contract.
set -euo pipefail
cd "$(dirname "$0")"
spec=../../openapi.yaml
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
# The tools run as themselves, not under npx, so that the proxy's process is
# the one cleanup stops.
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== lint"
redocly lint --config redocly.yaml "$spec"
echo "== types"
rm -rf gen dist
openapi-typescript "$spec" --output gen/api.d.ts
tsc -p tsconfig.json

echo "== the service behind the validating proxy"
(cd ../.. && go build -o "$work/towerrecall" ./cmd/towerrecall)
token=contract-check-token-0123456789
# The log exists before the loop below reads it: the backgrounded service
# opens it in its own process, which may not have run yet, and a sed of a
# missing file ends this script (pipefail).
: >"$work/serve.log"
TOWERRECALL_CATALOG_TOKEN=$token "$work/towerrecall" serve --addr 127.0.0.1:0 --model "$work/model" \
  --log-format json 2>"$work/serve.log" &
pids+=($!)
addr=
for _ in $(seq 1 120); do
  addr=$(sed -n 's/.*"addr":"\([^"]*\)".*"message":"ready".*/\1/p' "$work/serve.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.5
done
[ -n "$addr" ] || { echo "the service did not become ready:"; cat "$work/serve.log"; exit 1; }
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
prism proxy "$spec" "http://$addr" --errors --validate-request=false --host 127.0.0.1 --port "$port" >"$work/prism.log" 2>&1 &
pids+=($!)
listening() { curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; } # any answer will do
for _ in $(seq 1 120); do
  listening && break
  sleep 0.5
done
listening || { echo "prism did not start:"; cat "$work/prism.log"; exit 1; }
status=0
CONTRACT_BASE="http://127.0.0.1:$port" CONTRACT_TOKEN=$token node --test --test-timeout=60000 dist/contract.test.js || status=$?
if [ "$status" -ne 0 ]; then
  echo "== prism's log"
  tail -50 "$work/prism.log"
fi
exit "$status"
