#!/usr/bin/env bash
# Offline stand-in for the Cloud Run functions Go buildpack: builds the
# functions the way Cloud Build will, from exactly the files Terraform zips,
# then starts each entry point and checks that it serves HTTP.
#
#   scripts/buildpack-check.sh [--out FILE] [--build-only] [EntryPoint ...]
#                                  (default: all of ENTRY_POINTS)
#   --out FILE     also keep the built binary at FILE (scripts/deploy-shape.sh
#                  starts it with each function's Terraform configuration)
#   --build-only   build (and keep with --out) without starting the entry points
#
# What it reproduces (GoogleCloudPlatform/buildpacks, go/functions_framework):
#   - the source is the module minus terraform/source-excludes.txt (the same
#     list data.archive_file.source uses), placed in serverless_function_source_code/;
#   - a generated main package in serverless_function_source_code/functions.local/app
#     blank-imports the root package and calls funcframework, which serves the
#     function named by FUNCTION_TARGET at "/";
#   - `go mod tidy` in the source before building (the buildpack runs it too).
# Deliberate differences: the server binds 127.0.0.1 (the buildpack's main
# listens on all interfaces), tidy/build use only the local module cache
# (GOPROXY=off, GOFLAGS=-mod=mod), and init-time config gets dummy values.
#
# Entry points whose package does not exist yet are skipped with a message.
# Exit status: 0 when every present entry point built and served, 1 otherwise.
set -euo pipefail

# Entry point → package directory (relative to the module root).
ENTRY_POINTS=(Receiver Collector Notifier Workflow Reconciler)
declare -A PACKAGE_DIR=(
	[Receiver]=functions/receiver
	[Collector]=functions/collector
	[Notifier]=functions/notifier
	[Workflow]=functions/workflow
	[Reconciler]=functions/reconciler
)
START_TIMEOUT_SECONDS="${START_TIMEOUT_SECONDS:-20}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
excludes_file="$root/terraform/source-excludes.txt"
out_file=""
build_only=0
while [ $# -gt 0 ]; do
	case "$1" in
	--out)
		[ $# -ge 2 ] || { echo "buildpack-check: --out needs a file" >&2; exit 2; }
		out_file="$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")" || { echo "buildpack-check: no directory for $2" >&2; exit 2; }
		shift 2
		;;
	--build-only) build_only=1; shift ;;
	--) shift; break ;;
	-*) echo "buildpack-check: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] && ENTRY_POINTS=("$@")

for tool in go python3 curl; do
	command -v "$tool" >/dev/null || { echo "buildpack-check: '$tool' is not on PATH" >&2; exit 2; }
done
[ -f "$excludes_file" ] || { echo "buildpack-check: missing $excludes_file" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/buildpack-check.XXXXXX")"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

src="$work/serverless_function_source_code"
mkdir -p "$src"

# ------------------------------------------------------------ 1. zip contents
# The same selection as hashicorp/archive's archive_file: walk the tree,
# match each relative path (files and directories) against the doublestar
# globs, skip a matching directory with its contents.
echo "==> selecting source files (excludes: ${excludes_file#"$root"/})"
python3 - "$root" "$src" "$excludes_file" <<'PY'
import os, re, shutil, sys

root, dest, excl_file = sys.argv[1:4]
patterns = [l.strip() for l in open(excl_file) if l.strip() and not l.strip().startswith("#")]

def to_regex(glob):
    # doublestar: "**/" = zero or more directories, "**" = anything,
    # "*" and "?" never cross "/", "[...]" is a character class.
    i, out = 0, ""
    while i < len(glob):
        if glob.startswith("**/", i):
            out += "(?:.*/)?"; i += 3
        elif glob.startswith("**", i):
            out += ".*"; i += 2
        elif glob[i] == "*":
            out += "[^/]*"; i += 1
        elif glob[i] == "?":
            out += "[^/]"; i += 1
        elif glob[i] == "[":
            j = glob.index("]", i)
            out += glob[i:j + 1]; i = j + 1
        else:
            out += re.escape(glob[i]); i += 1
    return re.compile(out + r"\Z")

regexes = [to_regex(p) for p in patterns]
excluded = lambda rel: any(r.match(rel) for r in regexes)

count = size = 0
for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    reldir = os.path.relpath(dirpath, root)
    reldir = "" if reldir == "." else reldir + "/"
    dirnames[:] = sorted(d for d in dirnames if not excluded(reldir + d))
    for f in sorted(filenames):
        rel = reldir + f
        if excluded(rel):
            continue
        os.makedirs(os.path.join(dest, reldir), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), os.path.join(dest, rel))
        count += 1
        size += os.path.getsize(os.path.join(root, rel))
print(f"    {count} files, {size / 1024:.0f} KiB (uncompressed)")
PY

[ -f "$src/go.mod" ] || { echo "buildpack-check: FAIL — go.mod is not in the source selection" >&2; exit 1; }
module="$(cd "$src" && go mod edit -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Module"]["Path"])')"
root_pkg_name="$(cd "$src" && sed -n 's/^package \([A-Za-z0-9_]*\).*/\1/p' $(ls ./*.go 2>/dev/null | grep -v '_test.go$' | head -n 1) 2>/dev/null | head -n 1 || true)"
if [ -z "$root_pkg_name" ]; then
	echo "buildpack-check: FAIL — no Go package at the module root; the buildpack needs one (geminihooks.go)" >&2
	exit 1
fi
# The buildpack imports <module>/<package name> when a directory of that name
# exists at the root, else <module>.
if [ -d "$src/$root_pkg_name" ]; then
	echo "buildpack-check: FAIL — a directory named like the root package ($root_pkg_name/) exists; the buildpack would import $module/$root_pkg_name instead of $module" >&2
	exit 1
fi

# ------------------------------------------------------------ 2. entry points present
present=()
for ep in "${ENTRY_POINTS[@]}"; do
	dir="${PACKAGE_DIR[$ep]:-}"
	[ -n "$dir" ] || { echo "buildpack-check: unknown entry point $ep (known: ${!PACKAGE_DIR[*]})" >&2; exit 2; }
	if compgen -G "$src/$dir/*.go" >/dev/null; then
		present+=("$ep")
	else
		echo "    skip $ep: $dir has no Go files yet"
	fi
done
if [ ${#present[@]} -eq 0 ]; then
	echo "buildpack-check: nothing to check (no entry point package exists yet)"
	exit 0
fi

# ------------------------------------------------------------ 3. generated main
# Offline by default: everything comes from the local module cache, whose
# contents were verified against the checksum database when downloaded, so
# the sumdb (unreachable offline) is not consulted for go.sum lines the
# temporary copy adds. BUILDPACK_CHECK_GOPROXY=https://proxy.golang.org lets
# it download what the cache lacks (with normal checksum verification).
export GOFLAGS="-mod=mod" GOWORK=off GOTOOLCHAIN=local
export GOPROXY="${BUILDPACK_CHECK_GOPROXY:-off}"
[ "$GOPROXY" = "off" ] && export GOSUMDB=off
offline_hint() {
	if [ "$GOPROXY" = "off" ] && grep -q 'GOPROXY=off' <<<"$1"; then
		echo "    hint: the module cache lacks a module the deployed build needs; fetch it once with"
		echo "          BUILDPACK_CHECK_GOPROXY=https://proxy.golang.org scripts/buildpack-check.sh"
	fi
}
write_main() { # write_main <import path>...
	mkdir -p "$src/functions.local/app"
	{
		echo '// Generated by scripts/buildpack-check.sh like the Go functions buildpack main.'
		echo 'package main'
		echo
		echo 'import ('
		echo '	"log"'
		echo '	"net/http"'
		echo '	"os"'
		echo
		for imp in "$@"; do echo "	_ \"$imp\""; done
		echo
		echo '	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"'
		echo ')'
		echo
		echo 'func main() {'
		echo '	http.HandleFunc("/robots.txt", http.NotFound)'
		echo '	http.HandleFunc("/favicon.ico", http.NotFound)'
		echo '	port := os.Getenv("PORT")'
		echo '	if port == "" {'
		echo '		port = "8080"'
		echo '	}'
		echo '	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {'
		echo '		log.Fatalf("Function failed to start: %v\n", err)'
		echo '	}'
		echo '}'
	} >"$src/functions.local/app/main.go"
}

cd "$src"
echo "==> go mod tidy (as the buildpack does; local module cache only)"
if ! grep -q 'github.com/GoogleCloudPlatform/functions-framework-go ' go.mod; then
	echo "    go.mod does not require functions-framework-go; the buildpack would inject v1.9.2"
	go mod edit -require github.com/GoogleCloudPlatform/functions-framework-go@v1.9.2
fi
write_main "$module"
if tidy_out="$(go mod tidy 2>&1)"; then
	echo "    ok"
else
	# Offline, tidy may miss test-only modules of dependencies; the build
	# below still proves the deployed packages compile.
	echo "    note: go mod tidy failed offline (Cloud Build runs it online):"
	echo "$tidy_out" | tail -n 5 | sed 's/^/      /'
fi

echo "==> go build (main importing $module)"
bin="$work/function"
build_mode="root package"
if ! build_out="$(go build -trimpath -o "$bin" ./functions.local/app 2>&1)"; then
	echo "$build_out" | sed 's/^/    /'
	offline_hint "$build_out"
	if [ ${#present[@]} -lt ${#ENTRY_POINTS[@]} ]; then
		# The root package imports every functions/* package, so it cannot
		# build until all exist; check the present ones on their own.
		echo "    the root package does not build while entry points are missing; building the present ones directly"
		imports=()
		for ep in "${present[@]}"; do imports+=("$module/${PACKAGE_DIR[$ep]}"); done
		write_main "${imports[@]}"
		build_mode="present entry points only (root package does not build yet)"
		if ! build_out="$(go build -trimpath -o "$bin" ./functions.local/app 2>&1)"; then
			echo "$build_out" | sed 's/^/    /'
			offline_hint "$build_out"
			echo "buildpack-check: FAIL — the present entry points do not build" >&2
			exit 1
		fi
	else
		echo "buildpack-check: FAIL — the deployed source does not build" >&2
		exit 1
	fi
fi
echo "    built ($build_mode)"
if [ -n "$out_file" ]; then
	cp "$bin" "$out_file"
	echo "    kept at $out_file"
fi
if [ $build_only = 1 ]; then
	echo "buildpack-check: built ${#present[@]} of ${#ENTRY_POINTS[@]} entry points (--build-only: not started)"
	exit 0
fi

# ------------------------------------------------------------ 4. serve each entry point
# Dummy configuration so that nothing at start-up needs Google: secrets as
# files, emulator hosts that refuse connections, no metadata server.
printf 'whsec_%s' "$(printf 'buildpack-check-not-a-secret' | base64)" >"$work/webhook-secret"
printf 'buildpack-check-not-a-key' >"$work/api-key"
printf 'https://127.0.0.1:9/notify' >"$work/destination"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

declare -A result
failed=0
for ep in "${present[@]}"; do
	port="$(free_port)"
	log="$work/$ep.log"
	env -i PATH="$PATH" HOME="$HOME" \
		FUNCTION_TARGET="$ep" PORT="$port" K_SERVICE="buildpack-check-$ep" \
		GOOGLE_CLOUD_PROJECT=buildpack-check FIRESTORE_DATABASE="(default)" \
		FIRESTORE_EMULATOR_HOST=127.0.0.1:9 PUBSUB_EMULATOR_HOST=127.0.0.1:9 GCE_METADATA_HOST=127.0.0.1:9 \
		GEMINI_WEBHOOK_SECRETS_FILE="$work/webhook-secret" GEMINI_API_KEY_FILE="$work/api-key" \
		NOTIFIER_DESTINATION_FILE="$work/destination" GEMINI_BASE_URL=http://127.0.0.1:9 \
		EVENTS_TOPIC=buildpack-check-events RESULTS_TOPIC=buildpack-check-results MAX_DELIVERY_ATTEMPTS=5 \
		"$bin" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")

	code=""
	deadline=$((SECONDS + START_TIMEOUT_SECONDS))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" || true)"
		[ -n "$code" ] && [ "$code" != "000" ] && break
		code=""
		sleep 0.2
	done
	if [ -n "$code" ]; then
		result[$ep]="ok      $ep serves on 127.0.0.1:$port (GET / → HTTP $code)"
	else
		if kill -0 "$pid" 2>/dev/null; then
			result[$ep]="FAILED  $ep did not answer within ${START_TIMEOUT_SECONDS}s"
		else
			result[$ep]="FAILED  $ep exited during start-up"
		fi
		failed=1
		echo "--- $ep log (last 20 lines):"
		tail -n 20 "$log" | sed 's/^/    /'
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done

echo
echo "==> summary"
for ep in "${ENTRY_POINTS[@]}"; do
	if [ -n "${result[$ep]:-}" ]; then
		echo "  ${result[$ep]}"
	else
		echo "  skipped $ep (package ${PACKAGE_DIR[$ep]} not present)"
	fi
done
echo "  build: $build_mode"
if [ $failed -ne 0 ]; then
	echo "buildpack-check: FAIL"
	exit 1
fi
echo "buildpack-check: PASS — ${#present[@]} of ${#ENTRY_POINTS[@]} entry points built and served"
