# The Reconciler's schedule. Cloud Scheduler calls the function over HTTP
# with an OIDC token of its own service account, which holds run.invoker on
# the Reconciler and nothing else.
#
# Why Cloud Scheduler → HTTP (and not Scheduler → Pub/Sub → push): a sweep is
# one bounded request with nothing to queue; a missed or failed run is
# harmless because the next run finds the same due jobs (their schedule
# lives on the jobs in Firestore), so there is nothing for a topic,
# retention or a dead-letter topic to keep. HTTP with OIDC needs one
# identity and one grant, and the job's attempt deadline bounds the call.

resource "google_service_account" "scheduler" {
  count = var.reconciler.enabled ? 1 : 0

  project      = var.project_id
  account_id   = "${local.p}-scheduler"
  display_name = "geminihooks Reconciler schedule"
  description  = "Signs Cloud Scheduler's OIDC token for ${local.p}-reconciler; holds run.invoker on that function only."

  depends_on = [google_project_service.enabled]
}

locals {
  scheduler_email = var.reconciler.enabled ? "${google_service_account.scheduler[0].account_id}@${var.project_id}.iam.gserviceaccount.com" : null
}

# roles/run.invoker on the Reconciler only
# (https://cloud.google.com/run/docs/triggering/using-scheduler).
resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_reconciler" {
  count = var.reconciler.enabled ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this["reconciler"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.scheduler_email}"
}

resource "google_cloud_scheduler_job" "reconcile" {
  count = var.reconciler.enabled ? 1 : 0

  project     = var.project_id
  region      = var.region
  name        = "${local.p}-reconcile"
  description = "Runs one bounded Reconciler sweep: no Gemini job stays unfinished silently when its webhook never arrives."
  schedule    = var.reconciler.schedule
  time_zone   = var.reconciler.time_zone
  # Above the function's 300 s timeout, so Scheduler never abandons a sweep
  # that is still running.
  attempt_deadline = "320s"

  retry_config {
    # The next scheduled run does the same work; one quick retry covers a
    # cold start that failed.
    retry_count          = 1
    min_backoff_duration = "30s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.this["reconciler"].service_config[0].uri
    oidc_token {
      service_account_email = local.scheduler_email
      audience              = google_cloudfunctions2_function.this["reconciler"].service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled, google_cloud_run_v2_service_iam_member.scheduler_invokes_reconciler]
}
