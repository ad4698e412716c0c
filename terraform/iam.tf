# Identities and least-privilege grants.
#
# Runtime: one service account per function, holding exactly:
#   receiver   datastore.user (this database) · pubsub.publisher (events topic) · secretAccessor (webhook secret)
#   collector  datastore.user (this database) · pubsub.publisher (results and events topics) · secretAccessor (API key)
#              · storage.objectCreator (video bucket, only when var.video_bucket is set)
#   notifier   datastore.user (this database) · secretAccessor (destination secret; the Notifier is optional)
#   workflow   datastore.user (this database) · secretAccessor (API key)
#   reconciler datastore.user (this database) · pubsub.publisher (events topic) · secretAccessor (API key)
#   all        telemetry.tracesWriter (project; only when var.tracing.enabled)
# Push: one invoker service account per push subscription (run.invoker on its
# function only). Schedule: one scheduler service account (run.invoker on the
# Reconciler only). Build: one builder service account for Cloud Build.
# tests/iam.tftest.hcl asserts this table.

resource "google_service_account" "runtime" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "${local.p}-${each.key}"
  display_name = "geminihooks ${each.value.entry_point} function"
  description  = "Runtime identity of the ${each.value.entry_point} function (${local.p}-${each.key})."

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "invoker" {
  for_each = local.invokers

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display
  description  = "Signs the OIDC token of push subscription ${local.push_subscriptions[each.key].name}; holds no other role."

  depends_on = [google_project_service.enabled]
}

# Cloud Build runs the Go buildpack as this account instead of the default
# compute service account (which new projects no longer grant Editor).
resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "${local.p}-builder"
  display_name = "geminihooks function builds"
  description  = "Cloud Build identity for building the geminihooks functions."

  depends_on = [google_project_service.enabled]
}

locals {
  # Members built from account_id (known at plan time) while still depending
  # on the account resource.
  runtime_member = {
    for k, sa in google_service_account.runtime : k => "serviceAccount:${sa.account_id}@${var.project_id}.iam.gserviceaccount.com"
  }
  runtime_email = {
    for k, sa in google_service_account.runtime : k => "${sa.account_id}@${var.project_id}.iam.gserviceaccount.com"
  }
  invoker_email = {
    for k, sa in google_service_account.invoker : k => "${sa.account_id}@${var.project_id}.iam.gserviceaccount.com"
  }
  builder_email  = "${google_service_account.builder.account_id}@${var.project_id}.iam.gserviceaccount.com"
  builder_member = "serviceAccount:${local.builder_email}"
}

# ---------------------------------------------------------------- runtime grants

# roles/datastore.user: read/write Firestore documents
# (https://cloud.google.com/firestore/docs/security/iam#roles). Firestore IAM
# is granted on the project; the condition narrows it to our database.
resource "google_project_iam_member" "datastore_user" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.runtime_member[each.key]

  condition {
    title       = "${local.p}-firestore-db"
    description = "Only the geminihooks Firestore database."
    expression  = "resource.name == \"${local.firestore_database_name}\""
  }
}

# roles/pubsub.publisher on the events topic: the Receiver publishes one event
# per recorded webhook delivery (https://cloud.google.com/pubsub/docs/access-control#roles).
resource "google_pubsub_topic_iam_member" "receiver_publishes_events" {
  project = var.project_id
  topic   = google_pubsub_topic.this["events"].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member["receiver"]
}

# roles/pubsub.publisher on the events topic: the Collector hands the rest of
# a large batch output to its next invocation (a continuation message).
resource "google_pubsub_topic_iam_member" "collector_publishes_continuations" {
  project = var.project_id
  topic   = google_pubsub_topic.this["events"].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member["collector"]
}

# roles/pubsub.publisher on the events topic: the Reconciler announces a job
# state it found (a missed webhook) exactly like the Receiver.
resource "google_pubsub_topic_iam_member" "reconciler_publishes_events" {
  count = var.reconciler.enabled ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.this["events"].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member["reconciler"]
}

# roles/pubsub.publisher on the results topic: the Collector publishes one
# results event per collected job.
resource "google_pubsub_topic_iam_member" "collector_publishes_results" {
  project = var.project_id
  topic   = google_pubsub_topic.this["results"].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member["collector"]
}

# roles/secretmanager.secretAccessor on each secret a function mounts, and on
# nothing else (https://cloud.google.com/secret-manager/docs/access-control).
resource "google_secret_manager_secret_iam_member" "mounted" {
  for_each = merge([
    for k in keys(local.functions) : {
      for m in local.secret_mounts[k] : "${k}/${m.secret}" => { function = k, secret = m.secret }
    }
  ]...)

  project   = var.project_id
  secret_id = local.secret_ref[each.value.secret]
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member[each.value.function]
}

# roles/storage.objectCreator on the video bucket: the Collector writes
# generated videos there; it never reads, lists or overwrites
# (https://cloud.google.com/storage/docs/access-control/iam-roles). The role
# cannot replace an object, so the Collector writes with a does-not-exist
# precondition and takes 412 (already there from an earlier attempt of the
# same message) as done: a redelivery after a successful copy succeeds
# (shared/collect GCSVideos.Put).
resource "google_storage_bucket_iam_member" "collector_writes_videos" {
  count = var.video_bucket == null ? 0 : 1

  bucket = var.video_bucket
  role   = "roles/storage.objectCreator"
  member = local.runtime_member["collector"]
}

# roles/telemetry.tracesWriter: write spans to Cloud Trace through the
# Telemetry (OTLP) API (shared/tracing). Granted on the project, the only
# level it exists at; it allows writing spans, not reading traces.
resource "google_project_iam_member" "trace_agent" {
  for_each = var.tracing.enabled ? local.functions : {}

  project = var.project_id
  role    = "roles/telemetry.tracesWriter"
  member  = local.runtime_member[each.key]
}

# ---------------------------------------------------------------- invocation

# Public Receiver: Gemini cannot attach Google credentials, so the Standard
# Webhooks signature check in the function is the authentication. This is the
# only allUsers binding in the configuration (tests/iam.tftest.hcl).
resource "google_cloud_run_v2_service_iam_member" "receiver_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this["receiver"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# roles/run.invoker for each consumer's push identity on that consumer only
# (https://cloud.google.com/run/docs/triggering/pubsub-push).
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = local.own_push

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.invoker_email[each.key]}"
}

# ---------------------------------------------------------------- Pub/Sub service agent

# roles/iam.serviceAccountTokenCreator on each invoker account we create: lets
# the Pub/Sub service agent mint the push OIDC token. Needed for projects that
# enabled Pub/Sub before 2021-04-08; harmless and narrowly scoped otherwise.
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  for_each = local.invokers

  service_account_id = google_service_account.invoker[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# roles/pubsub.publisher on the dead-letter topics: without it dead-lettering
# silently fails (https://cloud.google.com/pubsub/docs/handling-failures#grant_forwarding_permissions).
resource "google_pubsub_topic_iam_member" "agent_publishes_dlq" {
  for_each = toset(local.dlq_topics)

  project = var.project_id
  topic   = google_pubsub_topic.this[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# roles/pubsub.subscriber on each source subscription: the service agent must
# acknowledge the message it forwarded to the dead-letter topic.
resource "google_pubsub_subscription_iam_member" "agent_acks_source" {
  for_each = local.push_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# ---------------------------------------------------------------- build

# roles/logging.logWriter: Cloud Build writes the build log
# (https://cloud.google.com/functions/docs/securing/build-custom-sa).
resource "google_project_iam_member" "builder_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.builder_member
}

# roles/artifactregistry.writer on our image repository only: the build
# pushes the function image there.
resource "google_artifact_registry_repository_iam_member" "builder_pushes_images" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.repository_id
  role       = "roles/artifactregistry.writer"
  member     = local.builder_member
}

# roles/storage.objectViewer on the source bucket only: the build reads the zip.
resource "google_storage_bucket_iam_member" "builder_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = local.builder_member
}
