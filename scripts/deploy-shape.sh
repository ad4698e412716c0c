#!/usr/bin/env bash
# Deploy-shape test: starts every function exactly as Terraform configures it
# and sends each a real request.
#
#   scripts/deploy-shape.sh [--bin FILE]
#
# 1. Plans terraform/ for the variable sets in terraform/tests/deploy_shape.tftest.hcl
#    ("defaults": only the required variables; "everything_on") with mock
#    providers, offline, and reads the planned google_cloudfunctions2_function
#    resources from `terraform test -json -verbose`: entry point, environment
#    variables, secret volumes.
# 2. Builds the functions the way the Go buildpack does
#    (scripts/buildpack-check.sh --build-only), unless --bin names that build.
# 3. Runs internal/deployshape's TestDeployShape on the plans: per variable
#    set, each planned function runs as its own process of that binary with
#    exactly the planned environment (secret volumes as files with plausible
#    contents; emulators standing in for Google), against the Firestore
#    emulator, pstest and the Gemini simulator, and gets a real request: a
#    signed webhook for the Receiver, push deliveries of the messages it led
#    to for the Collector, Notifier and Workflow. It fails when a function does
#    not answer as production must, and when Terraform deploys a function the
#    test has no request for.
#
# Offline: uses ../shared/terraform (schema-only providers via dev_overrides,
# see its README) when present, else the installed providers (terraform init
# needs registry or mirror access). Needs FIRESTORE_EMULATOR_HOST or the
# gcloud Firestore emulator (the Go test starts one then).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
shared_tf="$root/../shared/terraform"
bin=""
while [ $# -gt 0 ]; do
	case "$1" in
	--bin)
		[ $# -ge 2 ] || { echo "deploy-shape: --bin needs a file" >&2; exit 2; }
		bin="$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")"
		shift 2
		;;
	*) echo "usage: $0 [--bin FILE]" >&2; exit 2 ;;
	esac
done
for tool in terraform go; do
	command -v "$tool" >/dev/null || { echo "deploy-shape: '$tool' is not on PATH" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/deploy-shape.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_DATA_DIR="$work/tfdata"
unset TF_WORKSPACE

# ------------------------------------------------------------ 1. plans
if [ -d "$shared_tf/schemaprovider" ]; then
	# The same dev_overrides wiring as ../shared/terraform/check.sh: one
	# schema-only provider binary serving each schemas/*.json.gz.
	echo "==> schema-only providers ($shared_tf)"
	mkdir -p "$work/plugins"
	(cd "$shared_tf/schemaprovider" && GOWORK=off go build -trimpath -buildvcs=false -mod=readonly \
		-ldflags "-X 'main.defaultSchemaDir=$shared_tf/schemas'" -o "$work/plugins/schemaprovider" .)
	{
		echo 'provider_installation {'
		echo '  dev_overrides {'
		for f in "$shared_tf"/schemas/*.json.gz; do
			name="$(basename "$f" .json.gz)"
			ln "$work/plugins/schemaprovider" "$work/plugins/terraform-provider-$name"
			printf '    "hashicorp/%s" = "%s"\n' "$name" "$work/plugins"
		done
		echo '  }'
		echo '  direct {}'
		echo '}'
	} >"$work/terraformrc"
	export TF_CLI_CONFIG_FILE="$work/terraformrc"
else
	echo "==> $shared_tf not found: terraform init with the real providers (needs registry or mirror access)"
	if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
		: >"$work/terraformrc"
		export TF_CLI_CONFIG_FILE="$work/terraformrc"
	fi
	if ! init_log="$(terraform -chdir="$root/terraform" init -backend=false -input=false 2>&1)"; then
		echo "$init_log" >&2
		# No schemas to plan with: say so loudly (TF_CHECK_REQUIRED=1 fails).
		if [ "${TF_CHECK_REQUIRED:-}" != "1" ] && grep -q "could not connect to registry" <<<"$init_log"; then
			echo "deploy-shape: SKIPPED: no $shared_tf and no registry access to plan with"
			exit 0
		fi
		exit 1
	fi
fi

echo "==> terraform test -json -verbose (tests/deploy_shape.tftest.hcl)"
plans="$work/plans.jsonl"
if ! terraform -chdir="$root/terraform" test -json -verbose -filter=tests/deploy_shape.tftest.hcl >"$plans" 2>"$work/tf.err"; then
	echo "deploy-shape: terraform test failed:" >&2
	grep -o '"@message":"[^"]*"' "$plans" | tail -n 20 >&2 || true
	cat "$work/tf.err" >&2
	exit 1
fi

# ------------------------------------------------------------ 2. build
if [ -z "$bin" ]; then
	bin="$work/function"
	"$root/scripts/buildpack-check.sh" --build-only --out "$bin"
fi

# ------------------------------------------------------------ 3. run
echo "==> starting every planned function with its planned environment"
cd "$root"
rc=0
DEPLOY_SHAPE_PLANS="$plans" DEPLOY_SHAPE_BIN="$bin" \
	go test -count=1 -run '^TestDeployShape$' -v ./internal/deployshape/ || rc=$?
if [ $rc -ne 0 ]; then
	echo "deploy-shape: FAIL" >&2
	exit 1
fi
echo "deploy-shape: PASS"
