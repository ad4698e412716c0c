# APIs the deployment needs. Eventarc is deliberately absent: the consumers
# are fed by our own push subscriptions (with retry policy, dead-letter topic
# and OIDC), not by function-managed Eventarc triggers, which offer no
# dead-letter topic and a 24 h retention.
locals {
  services = toset([
    "artifactregistry.googleapis.com", # images built from the function source
    "cloudbuild.googleapis.com",       # the Go buildpack build of each function
    "cloudfunctions.googleapis.com",   # google_cloudfunctions2_function
    "cloudscheduler.googleapis.com",   # the Reconciler's schedule
    "cloudtrace.googleapis.com",       # Cloud Trace, where the functions' traces are read
    "firestore.googleapis.com",        # job ledger, deliveries, results
    "iam.googleapis.com",              # service accounts
    "logging.googleapis.com",          # log-based metrics behind the dashboard
    "monitoring.googleapis.com",       # alert policies, dashboard
    "pubsub.googleapis.com",           # events/results topics, push subscriptions, DLQs
    "run.googleapis.com",              # gen2 functions run as Cloud Run services
    "secretmanager.googleapis.com",    # webhook secret, API key, notifier destination
    "storage.googleapis.com",          # source zip bucket
    "telemetry.googleapis.com",        # OTLP endpoint the functions export spans to (var.tracing)
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project = var.project_id
  service = each.value
  # Other workloads in the project may use the same APIs.
  disable_on_destroy = false
}

# Project number, for the Pub/Sub service agent's address.
data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
