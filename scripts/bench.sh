#!/usr/bin/env bash
# Runs geminihooks' evidence suite on this machine and writes a Markdown
# report with plots to results/ (REPORT.md + PNGs):
#
#   1. push vs poll        go run ./bench/cmd/pushpoll
#   2. Receiver load test  go run ./bench/cmd/loadtest
#   3. chaos run           go run ./bench/cmd/chaos
#   4. fuzzing             go test -fuzz for every untrusted-input parser
#   5. cold start          go run ./bench/cmd/coldstart
#   6. tracing overhead    go run ./bench/cmd/tracing (Receiver, tracing on vs off)
#   7. large batch outputs go run ./bench/cmd/collectbench (checkpointed collection:
#                          results/s, peak heap, invocations, Range vs skip vs single
#                          pass) and the 50,000-line end-to-end devstack scenario
#   8. completeness        go run ./bench/cmd/reconcile (lost webhooks, the Reconciler)
#
# Every figure is printed next to its goal. Figures are ratios of runs made
# side by side on the same machine; absolute numbers depend on it.
#
# Knobs (environment):
#   RESULTS=results            output directory
#   ONLY="pushpoll loadtest chaos fuzz coldstart tracing collect reconcile"   sections to run
#   PUSHPOLL_JOBS=1000         concurrent jobs (webhook run)
#   PUSHPOLL_POLL_JOBS=300     jobs per polling strategy (0 = all PUSHPOLL_JOBS)
#   PUSHPOLL_WALL=120s         wall time the webhook run's job ends are compressed into
#   LOAD_LEVELS=1,8,32,64,128,256   LOAD_N=2000   LOAD_N_FIRESTORE=400
#   CHAOS_DELIVERIES=10000     delivery attempts wanted: the chaos run repeats verified rounds until reached
#   CHAOS_JOBS=2500            jobs per round
#   CHAOS_TIMEOUT=6m           bound on each chaos round
#   FUZZTIME=30s               per fuzz target, one target at a time
#   COLDSTART_RUNS=5
#   TRACING_N=2000  TRACING_ROUNDS=6   deliveries per round, alternating rounds per variant
#   COLLECT_SIZES=10000,100000,1000000  COLLECT_BUDGET=2s  COLLECT_FS_LINES=10000  COLLECT_FS_BUDGET=3s
#   COLLECT_E2E_LINES=50000    lines of the end-to-end scenario (test.sh runs 10,000)
#   RECONCILE_JOBS=300  RECONCILE_TIMESCALE=120   completeness run (about 2 minutes)
# ONLY=none re-assembles results/REPORT.md from the parts of earlier runs.
# Default total: about 10 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"

RESULTS="${RESULTS:-results}"
ONLY="${ONLY:-pushpoll loadtest chaos fuzz coldstart tracing collect reconcile}"
FUZZTIME="${FUZZTIME:-30s}"
mkdir -p "$RESULTS/parts"
results="$(cd "$RESULTS" && pwd -P)"
parts="$results/parts"

want() { [[ " $ONLY " == *" $1 "* ]]; }
failed=()
for p in pushpoll loadtest chaos fuzz coldstart tracing collect reconcile; do
	want "$p" && rm -f "$parts/$p.md"
done

# ------------------------------------------------------------ Firestore emulator
EMULATOR="${FIRESTORE_EMULATOR_PATH:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator}"
emu_pid=""
bin="$(mktemp -d "${TMPDIR:-/tmp}/geminihooks-bench.XXXXXX")"
cleanup() {
	if [[ -n "$emu_pid" ]]; then
		kill -TERM -- "-$emu_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 -- "-$emu_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$emu_pid" 2>/dev/null || true
	fi
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${FIRESTORE_EMULATOR_HOST:-}" ]] && { want pushpoll || want loadtest || want chaos || want collect || want reconcile; }; then
	[[ -x "$EMULATOR" ]] || { echo "bench.sh: Firestore emulator not found at $EMULATOR (gcloud components install cloud-firestore-emulator)" >&2; exit 1; }
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	setsid "$EMULATOR" start --host=127.0.0.1 --port="$port" >"$bin/emulator.log" 2>&1 &
	emu_pid=$!
	export FIRESTORE_EMULATOR_HOST="127.0.0.1:$port"
	for i in $(seq 1 240); do
		curl -fsS "http://$FIRESTORE_EMULATOR_HOST/" >/dev/null 2>&1 && break
		kill -0 "$emu_pid" 2>/dev/null || { echo "bench.sh: emulator exited" >&2; cat "$bin/emulator.log" >&2; exit 1; }
		[[ $i -eq 240 ]] && { echo "bench.sh: emulator not ready after 120s" >&2; exit 1; }
		sleep 0.5
	done
	echo "bench.sh: Firestore emulator on $FIRESTORE_EMULATOR_HOST"
fi

echo "bench.sh: building the benchmark mains"
go build -o "$bin/" ./bench/cmd/pushpoll ./bench/cmd/loadtest ./bench/cmd/chaos ./bench/cmd/coldstart ./bench/cmd/tracing ./bench/cmd/collectbench ./bench/cmd/reconcile || exit 1

step() { # step NAME command...
	local name="$1"; shift
	echo
	echo "==> $name"
	local t0=$SECONDS
	if ! "$@"; then
		failed+=("$name")
		echo "bench.sh: $name FAILED" >&2
	fi
	echo "    ($name took $((SECONDS - t0))s)"
}

if want pushpoll; then
	step "push vs poll" "$bin/pushpoll" -jobs "${PUSHPOLL_JOBS:-1000}" -poll-jobs "${PUSHPOLL_POLL_JOBS:-300}" \
		-wall "${PUSHPOLL_WALL:-120s}" -out "$parts"
fi
if want loadtest; then
	step "receiver load test" "$bin/loadtest" -levels "${LOAD_LEVELS:-1,8,32,64,128,256}" -n "${LOAD_N:-2000}" \
		-n-firestore "${LOAD_N_FIRESTORE:-400}" -out "$parts"
fi
if want chaos; then
	step "chaos run" "$bin/chaos" -deliveries "${CHAOS_DELIVERIES:-10000}" -jobs "${CHAOS_JOBS:-2500}" \
		-timeout "${CHAOS_TIMEOUT:-6m}" -out "$parts"
fi
if want reconcile; then
	step "completeness run" "$bin/reconcile" -jobs "${RECONCILE_JOBS:-300}" -timescale "${RECONCILE_TIMESCALE:-120}" -out "$parts"
fi

# ------------------------------------------------------------ fuzzing
# package → targets. shared/collect has no fuzz target for JSONL result
# parsing (reported below); add one there and list it here.
FUZZ_TARGETS=(
	"./shared/webhook FuzzParseSignatureHeader"
	"./shared/webhook FuzzHMACVerify"
	"./shared/event FuzzParseEnvelope"
	"./shared/event FuzzNormalizeError"
	"./shared/bus FuzzDecodePushBody"
	"./shared/collect FuzzParseLine"
	"./shared/collect FuzzSplitAndReadLines"
)
fuzz() {
	local out="$parts/fuzz.md" bad=0
	{
		echo "## 4. Fuzzing (FUZZTIME=$FUZZTIME per target, one at a time)"
		echo
		echo "| package | target | result | execs | crashers kept under testdata/fuzz |"
		echo "| --- | --- | --- | --- | --- |"
	} >"$out"
	local t pkg name log execs status before after
	for t in "${FUZZ_TARGETS[@]}"; do
		pkg="${t% *}" name="${t#* }"
		if ! grep -qs "func $name(" "$pkg"/*_test.go; then
			echo "| \`$pkg\` | $name | **missing** | — | — |" >>"$out"; bad=1; continue
		fi
		log="$bin/fuzz-$name.log"
		echo "    $pkg $name"
		before=$(find "$pkg/testdata/fuzz/$name" -type f 2>/dev/null | wc -l)
		if go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
			status="pass"
		else
			status="**FAIL** (crasher kept under \`$pkg/testdata/fuzz/$name/\`; re-run with \`go test -run $name $pkg\`)"
			bad=1
			tail -n 30 "$log" | sed 's/^/      /'
		fi
		after=$(find "$pkg/testdata/fuzz/$name" -type f 2>/dev/null | wc -l)
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
		echo "| \`$pkg\` | $name | $status | ${execs:-?} | $((after - before)) |" >>"$out"
	done
	# Every fuzz target in the tree must be listed above.
	missing=""
	while read -r f; do
		pkg="./$(dirname "$f")"
		for name in $(grep -ho 'func Fuzz[A-Za-z0-9]*' "$f" | sed 's/func //'); do
			[[ " ${FUZZ_TARGETS[*]} " == *" $pkg $name "* ]] || missing+=" $pkg:$name"
		done
	done < <(grep -rl --include='*_test.go' 'func Fuzz' shared functions bench 2>/dev/null)
	if [[ -n "$missing" ]]; then
		echo "" >>"$out"
		echo "Fuzz targets not listed in scripts/bench.sh:$missing" >>"$out"
		bad=1
	fi
	echo >>"$out"
	cat "$out"
	return $bad
}
want fuzz && step "fuzzing" fuzz

if want coldstart; then
	step "cold start" "$bin/coldstart" -runs "${COLDSTART_RUNS:-5}" -out "$parts"
fi
if want tracing; then
	step "tracing overhead" "$bin/tracing" -n "${TRACING_N:-2000}" -rounds "${TRACING_ROUNDS:-6}" -out "$parts"
fi

collect() {
	"$bin/collectbench" -sizes "${COLLECT_SIZES:-10000,100000,1000000}" -budget "${COLLECT_BUDGET:-2s}" \
		-fs-lines "${COLLECT_FS_LINES:-10000}" -fs-budget "${COLLECT_FS_BUDGET:-3s}" -out "$parts" || return 1
	# The whole pipeline (dev stack: Receiver, push dispatcher, Collector with
	# a 2 s budget, continuations through pstest) on a file batch.
	local log="$bin/collect-e2e.log" lines="${COLLECT_E2E_LINES:-50000}"
	if DEVSTACK_TEST_LINES="$lines" go test -count=1 -timeout 10m -run '^TestPipelineLargeBatch$' -v ./shared/devstack >"$log" 2>&1; then
		{
			echo
			echo "End to end (\`DEVSTACK_TEST_LINES=$lines go test -run TestPipelineLargeBatch ./shared/devstack\`, Firestore emulator, 2 s budget):"
			echo
			echo '```'
			grep -o 'summary: scenario=large.*' "$log"
			echo '```'
		} >>"$parts/collect.md"
	else
		tail -30 "$log" >&2
		return 1
	fi
}
want collect && step "large batch outputs" collect

# ------------------------------------------------------------ report
report="$results/REPORT.md"
{
	echo "# geminihooks benchmark report"
	echo
	echo "Generated by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared with other work),"
	echo "$(go version | cut -d' ' -f3-4), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')."
	echo "All traffic on 127.0.0.1; Firestore is the gcloud emulator, Pub/Sub is pstest, Gemini is shared/gemsim driven by the real genai SDK."
	echo "Numbers are noisy on a shared machine: read the ratios, not the absolute values."
	echo
	echo "Reproduce with \`./scripts/bench.sh\` (about 10 minutes; knobs such as \`PUSHPOLL_JOBS\`, \`CHAOS_JOBS\`, \`FUZZTIME\` are listed in the script)."
	echo "Sections: 1 push vs poll, 2 Receiver load test, 3 chaos run, 4 fuzzing, 5 cold start, 6 tracing overhead, 7 large batch outputs, 8 completeness (the Reconciler). Each says how it measures; every goal is checked in a table."
	echo
	echo "## Goals at a glance"
	echo
	echo "| section | goal | measured | verdict |"
	echo "| --- | --- | --- | --- |"
	for p in pushpoll loadtest chaos fuzz coldstart tracing collect reconcile; do
		[[ -f "$parts/$p.md" ]] || continue
		grep -E '\| (met|\*\*NOT met\*\*) \|$' "$parts/$p.md" | sed "s/^|/| $p |/"
	done
	if [[ -f "$parts/fuzz.md" ]]; then
		if grep -q 'no fuzz target exists' "$parts/fuzz.md"; then
			echo "| fuzz | a fuzz target for every untrusted-input parser | JSONL result parsing (shared/collect) has none | **NOT met** |"
		fi
		if grep -q '\*\*FAIL\*\*' "$parts/fuzz.md"; then
			echo "| fuzz | no crasher within FUZZTIME | crashers found (see section 4) | **NOT met** |"
		else
			echo "| fuzz | no crasher within FUZZTIME | $(grep -c '| pass |' "$parts/fuzz.md") targets passed | met |"
		fi
	fi
	echo
	for p in pushpoll loadtest chaos fuzz coldstart tracing collect reconcile; do
		[[ -f "$parts/$p.md" ]] && { cat "$parts/$p.md"; echo; }
	done
	if [[ ${#failed[@]} -gt 0 ]]; then
		echo "## Steps that failed"
		echo
		printf -- '- %s\n' "${failed[@]}"
	fi
} >"$report"
cp "$parts"/*.png "$results/" 2>/dev/null || true
echo
echo "bench.sh: report at $report"
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "bench.sh: failed steps: ${failed[*]}" >&2
	exit 1
fi
