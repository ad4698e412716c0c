#!/usr/bin/env bash
# Runs every test of geminihooks: go vet, the Go tests (with the race
# detector) against a real Firestore emulator and in-process pstest, and the
# offline Terraform checks. Starts what it needs and always stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

EMULATOR="${FIRESTORE_EMULATOR_PATH:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator}"
emu_pid=""
work="$(mktemp -d -t geminihooks-test.XXXXXX)"
cleanup() {
  rm -rf "$work"
  if [[ -n "$emu_pid" ]]; then
    kill -TERM -- "-$emu_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$emu_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

if [[ -z "${FIRESTORE_EMULATOR_HOST:-}" ]]; then
  if [[ ! -x "$EMULATOR" ]]; then
    echo "test.sh: Firestore emulator not found at $EMULATOR" >&2
    echo "test.sh: install it with: gcloud components install cloud-firestore-emulator" >&2
    echo "test.sh:   (or: apt-get install google-cloud-cli-firestore-emulator)" >&2
    exit 1
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000)))
  log=$(mktemp -t firestore-emulator.XXXXXX.log)
  setsid "$EMULATOR" start --host=127.0.0.1 --port="$port" >"$log" 2>&1 &
  emu_pid=$!
  export FIRESTORE_EMULATOR_HOST="127.0.0.1:$port"
  for i in $(seq 1 240); do
    if curl -fsS "http://$FIRESTORE_EMULATOR_HOST/" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$emu_pid" 2>/dev/null; then
      echo "test.sh: Firestore emulator exited early; its log:" >&2; cat "$log" >&2; exit 1
    fi
    if [[ $i -eq 240 ]]; then echo "test.sh: Firestore emulator not ready after 120s" >&2; cat "$log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "test.sh: Firestore emulator on $FIRESTORE_EMULATOR_HOST"
fi

# The official Gemini JS SDK check (shared/gemsim/jssdk_test.go) runs when
# node is present: install the SDK pinned by scripts/jssdk/package-lock.json
# (from the npm registry, once per lock file), and make the test required.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  lock_sum=$(sha256sum scripts/jssdk/package-lock.json | cut -d' ' -f1)
  if [[ "$(cat scripts/jssdk/node_modules/.installed-lock 2>/dev/null)" != "$lock_sum" ]]; then
    echo "test.sh: npm ci in scripts/jssdk (official Gemini JS SDK)"
    npm ci --prefix scripts/jssdk --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$lock_sum" >scripts/jssdk/node_modules/.installed-lock
  fi
  export GEMINIHOOKS_JSSDK=required
else
  echo "test.sh: node not found; the JS SDK check (shared/gemsim/jssdk_test.go) is skipped"
fi

echo "test.sh: go vet ./..."
go vet ./...

echo "test.sh: go test -race ./..."
go test -race -count=1 -timeout 25m ./...

if [[ -x scripts/tf-check.sh ]]; then
  echo "test.sh: terraform checks"
  scripts/tf-check.sh
fi
if [[ -x scripts/buildpack-check.sh ]]; then
  echo "test.sh: buildpack-equivalent build"
  scripts/buildpack-check.sh --out "$work/function"
fi
if [[ -x scripts/deploy-shape.sh ]]; then
  # Every function Terraform deploys (defaults and everything on), started
  # with exactly its planned environment and secrets, answering a real request.
  echo "test.sh: deploy-shape test"
  scripts/deploy-shape.sh --bin "$work/function"
fi
echo "test.sh: all checks passed"
