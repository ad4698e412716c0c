#!/usr/bin/env bash
# Deploy geminihooks to Google Cloud and register the Gemini webhook.
#
#   scripts/deploy.sh [deploy]       apply Terraform, make sure the secrets have
#                                    values and the webhook exists (idempotent)
#   scripts/deploy.sh rotate         rotate the webhook signing secret; the new
#                                    and the previous secret are both accepted
#   scripts/deploy.sh rotate-finish  after Gemini's 24 h overlap: keep only the
#                                    newest secret
#
# Environment:
#   TF_VAR_project_id or a tfvars file in TF_ARGS   the project (required)
#   TF_STATE_BUCKET    GCS bucket holding the Terraform state (required, unless
#                      terraform/backend_override.tf selects another backend);
#                      create it once, versioned (see terraform/README.md, "State")
#   TF_STATE_PREFIX    state path inside the bucket (default: geminihooks); use
#                      one prefix per deployment sharing a bucket
#   TF_ARGS            extra terraform arguments, e.g. "-var-file=prod.tfvars"
#   GEMINI_API_KEY     Gemini API key: used by the CLI for the webhook calls, and
#                      stored as the API key secret when that has no version yet
#   NOTIFIER_DESTINATION  with notifier.enabled: the URL (or JSON list of
#                      destinations) stored as the first version of the
#                      destination secret, which the Notifier needs to start
#   WEBHOOK_NAME       display name of the webhook (default: <name_prefix>-receiver)
#   WEBHOOK_EVENTS     comma-separated subscribed events (default: all 7
#                      subscribable ones)
#   AUTO_APPROVE=1     pass -auto-approve to terraform apply
#
# Why two applies: the Receiver mounts the webhook secret (the Notifier its
# destination), and a function revision whose secret has no version does not
# start. So the first, targeted apply creates only the APIs and the secret
# containers; then the secrets get their first versions (the webhook is
# registered at the Receiver's deterministic URL, which stores its signing
# secret); then the full apply deploys the functions. The full apply is
# retried once: right after a first apply, new service accounts and grants
# take a minute to be usable everywhere.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
tfdir="$root/terraform"
cmd="${1:-deploy}"
read -r -a tf_args <<<"${TF_ARGS:-}"
DEFAULT_EVENTS="batch.succeeded,batch.failed,batch.expired,interaction.requires_action,interaction.completed,interaction.failed,video.generated"

log() { printf '==> %s\n' "$*"; }
die() {
	printf 'deploy.sh: %s\n' "$*" >&2
	exit 1
}

for tool in terraform go gcloud jq; do
	command -v "$tool" >/dev/null || die "'$tool' is not on PATH"
done

approve=()
[ "${AUTO_APPROVE:-0}" = "1" ] && approve=(-auto-approve)

tf() { terraform -chdir="$tfdir" "$@"; }

# tf_init: initialise the gcs backend (partial configuration in versions.tf)
# with the state bucket and prefix. The backend locks the state while a plan
# or apply runs, so two deploys cannot interleave.
tf_init() {
	if compgen -G "$tfdir/*override.tf" >/dev/null; then
		log "terraform init (backend from $(cd "$tfdir" && ls -- *override.tf | tr '\n' ' '))"
		tf init -input=false >/dev/null
		return
	fi
	[ -n "${TF_STATE_BUCKET:-}" ] || die "TF_STATE_BUCKET must name the GCS bucket that keeps the Terraform state (see terraform/README.md, State)"
	local bucket="${TF_STATE_BUCKET#gs://}"
	gcloud storage buckets describe "gs://$bucket" --format='value(name)' >/dev/null 2>&1 ||
		die "state bucket gs://$bucket not found or not readable; create it once with:
  gcloud storage buckets create gs://$bucket --project PROJECT --location REGION --uniform-bucket-level-access --public-access-prevention
  gcloud storage buckets update gs://$bucket --versioning"
	log "terraform init (state: gs://$bucket/${TF_STATE_PREFIX:-geminihooks})"
	tf init -input=false -backend-config="bucket=$bucket" -backend-config="prefix=${TF_STATE_PREFIX:-geminihooks}" >/dev/null
}

# tf_settings: the values this script needs, evaluated from the configuration
# (not from outputs, which a targeted apply may leave stale).
tf_settings() {
	local expr='jsonencode({project = var.project_id, prefix = var.name_prefix, receiver_url = local.receiver_url, webhook_secret = local.webhook_secret_id, api_key_secret = local.api_key_secret_id, notifier_secret = local.notifier_dest_enabled ? local.notifier_secret_id : ""})'
	local raw
	raw="$(printf '%s\n' "$expr" | tf console "${tf_args[@]}")" || die "terraform console failed (is project_id set? TF_VAR_project_id or TF_ARGS=-var-file=…)"
	# console prints the string quoted (HCL syntax); decode it to JSON.
	settings="$(jq -r '.' <<<"$raw")"
	project="$(jq -r .project <<<"$settings")"
	prefix="$(jq -r .prefix <<<"$settings")"
	receiver_url="$(jq -r .receiver_url <<<"$settings")"
	webhook_secret="$(jq -r .webhook_secret <<<"$settings")"
	api_key_secret="$(jq -r .api_key_secret <<<"$settings")"
	notifier_secret="$(jq -r .notifier_secret <<<"$settings")"
}

cli() { (cd "$root" && go run ./cmd/geminihooks --project "$project" "$@"); }

has_version() { # has_version <secret-id>
	[ -n "$(gcloud secrets versions list "$1" --project "$project" --filter='state=ENABLED' --limit=1 --format='value(name)' 2>/dev/null)" ]
}

# find_webhook: id of the webhook whose URI is the Receiver's, or "".
find_webhook() {
	local out
	out="$(cli --format=json webhooks list)" || die "geminihooks webhooks list failed"
	jq -r --arg u "$receiver_url" '
		(if type == "array" then . else (.webhooks // .items // []) end)
		| map(select(.uri == $u)) | .[0].id // empty' <<<"$out"
}

need_api_key() {
	[ -n "${GEMINI_API_KEY:-}" ] || die "GEMINI_API_KEY must be set: the Gemini webhook API calls need it"
}

deploy() {
	tf_init
	tf_settings
	log "project $project, receiver $receiver_url"

	log "phase 1: APIs and secret containers (targeted apply)"
	tf apply -input=false "${approve[@]}" "${tf_args[@]}" \
		-target=google_project_service.enabled -target=google_secret_manager_secret.this

	if has_version "$api_key_secret"; then
		log "API key secret $api_key_secret has a version"
	else
		need_api_key
		log "storing \$GEMINI_API_KEY as the first version of $api_key_secret"
		printf '%s' "$GEMINI_API_KEY" | gcloud secrets versions add "$api_key_secret" --project "$project" --data-file=- >/dev/null
	fi

	need_api_key
	local name
	name="$(find_webhook)"
	if [ -n "$name" ]; then
		log "webhook $name already points at $receiver_url"
		has_version "$webhook_secret" ||
			die "webhook $name exists but secret $webhook_secret has no version: its signing secret was shown only once; run 'scripts/deploy.sh rotate' to get a new one"
	else
		log "registering the Gemini webhook for $receiver_url"
		cli webhooks create \
			--name "${WEBHOOK_NAME:-$prefix-receiver}" \
			--uri "$receiver_url" \
			--events "${WEBHOOK_EVENTS:-$DEFAULT_EVENTS}" \
			--secret-manager "projects/$project/secrets/$webhook_secret" ||
			die "geminihooks webhooks create failed"
		has_version "$webhook_secret" || die "webhook created but $webhook_secret still has no version"
	fi

	if [ -n "$notifier_secret" ]; then
		if has_version "$notifier_secret"; then
			log "Notifier destination secret $notifier_secret has a version"
		else
			[ -n "${NOTIFIER_DESTINATION:-}" ] ||
				die "notifier.enabled: set NOTIFIER_DESTINATION to the URL (or JSON list of destinations) the Notifier sends to; it becomes the first version of $notifier_secret (the Notifier cannot start without it)"
			log "storing \$NOTIFIER_DESTINATION as the first version of $notifier_secret"
			printf '%s' "$NOTIFIER_DESTINATION" | gcloud secrets versions add "$notifier_secret" --project "$project" --data-file=- >/dev/null
		fi
	fi

	log "phase 2: full apply (functions, Pub/Sub, Firestore, IAM, monitoring)"
	if ! tf apply -input=false "${approve[@]}" "${tf_args[@]}"; then
		# New service accounts, grants and APIs are eventually consistent:
		# a first apply can fail on them and succeed a minute later.
		log "apply failed; retrying once in 60 s (new identities and grants can take a minute to propagate)"
		sleep 60
		tf apply -input=false "${approve[@]}" "${tf_args[@]}" || die "terraform apply failed twice; see the errors above"
	fi

	log "done"
	printf '    receiver:  %s\n' "$(tf output -raw receiver_url)"
	printf '    results:   %s\n' "$(tf output -raw results_topic)"
	printf '    source:    %s\n' "$(tf output -raw source_object)"
	printf '    dashboard: %s\n' "$(tf output -raw dashboard_url)"
}

# Rotation keeps both secrets in the mounted `latest` version, comma
# separated ("new,previous"), because Gemini may still sign with the previous
# secret for 24 h and the Receiver reads only the latest version. The CLI
# writes that version itself (newest first) and never prints the secret.
rotate() {
	need_api_key
	tf_init
	tf_settings
	local id
	id="$(find_webhook)"
	[ -n "$id" ] || die "no webhook points at $receiver_url; run 'scripts/deploy.sh' first"
	log "rotating the signing secret of webhook $id (previous secret revoked by Gemini after 24 h)"
	cli webhooks rotate "$id" --secret-manager "projects/$project/secrets/$webhook_secret" ||
		die "geminihooks webhooks rotate failed"
	log "stored new,previous in $webhook_secret; run 'scripts/deploy.sh rotate-finish' after 24 h"
}

rotate_finish() {
	tf_init
	tf_settings
	local current
	current="$(gcloud secrets versions access latest --secret "$webhook_secret" --project "$project")" ||
		die "cannot read $webhook_secret"
	if [ "${current#*,}" = "$current" ]; then
		log "$webhook_secret already holds a single secret"
		return
	fi
	printf '%s' "${current%%,*}" | gcloud secrets versions add "$webhook_secret" --project "$project" --data-file=- >/dev/null
	log "$webhook_secret now holds only the newest secret; older versions can be disabled with 'gcloud secrets versions disable'"
}

case "$cmd" in
deploy) deploy ;;
rotate) rotate ;;
rotate-finish) rotate_finish ;;
-h | --help | help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$cmd' (deploy, rotate, rotate-finish)" ;;
esac
