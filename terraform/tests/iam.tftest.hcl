# Least privilege: every runtime service account holds exactly the roles
# listed in iam.tf, on exactly those resources, and nothing else in the
# configuration grants it anything.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

mock_provider "archive" {}

variables {
  project_id = "test-project"
}

run "runtime_roles_with_optional_grants" {
  variables {
    video_bucket = "videos-bucket"
    notifier     = { enabled = true }
  }

  # Every IAM binding in the configuration, as "member role resource".
  assert {
    condition = toset(concat(
      [for m in google_project_iam_member.datastore_user : "${m.member} ${m.role} project:${m.condition[0].expression}"],
      ["${google_pubsub_topic_iam_member.receiver_publishes_events.member} ${google_pubsub_topic_iam_member.receiver_publishes_events.role} topic:${google_pubsub_topic_iam_member.receiver_publishes_events.topic}"],
      ["${google_pubsub_topic_iam_member.collector_publishes_results.member} ${google_pubsub_topic_iam_member.collector_publishes_results.role} topic:${google_pubsub_topic_iam_member.collector_publishes_results.topic}"],
      ["${google_pubsub_topic_iam_member.collector_publishes_continuations.member} ${google_pubsub_topic_iam_member.collector_publishes_continuations.role} topic:${google_pubsub_topic_iam_member.collector_publishes_continuations.topic}"],
      [for m in google_pubsub_topic_iam_member.reconciler_publishes_events : "${m.member} ${m.role} topic:${m.topic}"],
      [for m in google_secret_manager_secret_iam_member.mounted : "${m.member} ${m.role} secret:${m.secret_id}"],
      [for m in google_storage_bucket_iam_member.collector_writes_videos : "${m.member} ${m.role} bucket:${m.bucket}"],
      [for m in google_project_iam_member.trace_agent : "${m.member} ${m.role} project"],
      ["${google_project_iam_member.builder_logs.member} ${google_project_iam_member.builder_logs.role} project"],
      ["${google_artifact_registry_repository_iam_member.builder_pushes_images.member} ${google_artifact_registry_repository_iam_member.builder_pushes_images.role} repo:${google_artifact_registry_repository_iam_member.builder_pushes_images.repository}"],
      ["${google_storage_bucket_iam_member.builder_reads_source.member} ${google_storage_bucket_iam_member.builder_reads_source.role} bucket:${google_storage_bucket_iam_member.builder_reads_source.bucket}"],
      )) == toset([
      "serviceAccount:geminihooks-receiver@test-project.iam.gserviceaccount.com roles/datastore.user project:resource.name == \"projects/test-project/databases/(default)\"",
      "serviceAccount:geminihooks-receiver@test-project.iam.gserviceaccount.com roles/pubsub.publisher topic:geminihooks-events",
      "serviceAccount:geminihooks-receiver@test-project.iam.gserviceaccount.com roles/secretmanager.secretAccessor secret:geminihooks-webhook-secret",

      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/datastore.user project:resource.name == \"projects/test-project/databases/(default)\"",
      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/pubsub.publisher topic:geminihooks-results",
      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/pubsub.publisher topic:geminihooks-events",
      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/secretmanager.secretAccessor secret:geminihooks-gemini-api-key",
      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/storage.objectCreator bucket:videos-bucket",

      "serviceAccount:geminihooks-notifier@test-project.iam.gserviceaccount.com roles/datastore.user project:resource.name == \"projects/test-project/databases/(default)\"",
      "serviceAccount:geminihooks-notifier@test-project.iam.gserviceaccount.com roles/secretmanager.secretAccessor secret:geminihooks-notifier-destination",

      "serviceAccount:geminihooks-workflow@test-project.iam.gserviceaccount.com roles/datastore.user project:resource.name == \"projects/test-project/databases/(default)\"",
      "serviceAccount:geminihooks-workflow@test-project.iam.gserviceaccount.com roles/secretmanager.secretAccessor secret:geminihooks-gemini-api-key",

      "serviceAccount:geminihooks-reconciler@test-project.iam.gserviceaccount.com roles/datastore.user project:resource.name == \"projects/test-project/databases/(default)\"",
      "serviceAccount:geminihooks-reconciler@test-project.iam.gserviceaccount.com roles/pubsub.publisher topic:geminihooks-events",
      "serviceAccount:geminihooks-reconciler@test-project.iam.gserviceaccount.com roles/secretmanager.secretAccessor secret:geminihooks-gemini-api-key",

      "serviceAccount:geminihooks-receiver@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter project",
      "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter project",
      "serviceAccount:geminihooks-notifier@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter project",
      "serviceAccount:geminihooks-workflow@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter project",
      "serviceAccount:geminihooks-reconciler@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter project",

      "serviceAccount:geminihooks-builder@test-project.iam.gserviceaccount.com roles/logging.logWriter project",
      "serviceAccount:geminihooks-builder@test-project.iam.gserviceaccount.com roles/artifactregistry.writer repo:geminihooks-functions",
      "serviceAccount:geminihooks-builder@test-project.iam.gserviceaccount.com roles/storage.objectViewer bucket:test-project-geminihooks-source",
    ])
    error_message = "runtime/build service accounts must hold exactly the roles documented in iam.tf"
  }

  # Each function runs as its own account.
  assert {
    condition = {
      for k, f in google_cloudfunctions2_function.this : k => f.service_config[0].service_account_email
      } == {
      receiver   = "geminihooks-receiver@test-project.iam.gserviceaccount.com"
      collector  = "geminihooks-collector@test-project.iam.gserviceaccount.com"
      notifier   = "geminihooks-notifier@test-project.iam.gserviceaccount.com"
      workflow   = "geminihooks-workflow@test-project.iam.gserviceaccount.com"
      reconciler = "geminihooks-reconciler@test-project.iam.gserviceaccount.com"
    }
    error_message = "each function must run as its own service account"
  }

  # Cloud Scheduler's identity may invoke the Reconciler and nothing else;
  # its token is minted for that account and the function's URL.
  assert {
    condition = (
      length(google_cloud_run_v2_service_iam_member.scheduler_invokes_reconciler) == 1 &&
      google_cloud_run_v2_service_iam_member.scheduler_invokes_reconciler[0].member == "serviceAccount:geminihooks-scheduler@test-project.iam.gserviceaccount.com" &&
      google_cloud_run_v2_service_iam_member.scheduler_invokes_reconciler[0].name == "geminihooks-reconciler" &&
      google_cloud_run_v2_service_iam_member.scheduler_invokes_reconciler[0].role == "roles/run.invoker" &&
      google_cloud_scheduler_job.reconcile[0].http_target[0].oidc_token[0].service_account_email == "geminihooks-scheduler@test-project.iam.gserviceaccount.com" &&
      google_cloud_scheduler_job.reconcile[0].http_target[0].http_method == "POST" &&
      alltrue([for m in google_cloud_run_v2_service_iam_member.push_invoker : m.member != "serviceAccount:geminihooks-scheduler@test-project.iam.gserviceaccount.com"])
    )
    error_message = "the scheduler account must hold run.invoker on the Reconciler only, and sign the job's OIDC token"
  }

  # Optional pieces appear only when enabled.
  assert {
    condition = (
      google_cloudfunctions2_function.this["notifier"].service_config[0].environment_variables["NOTIFIER_DESTINATION_FILE"] == "/etc/secrets/notifier/destination" &&
      google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["VIDEO_BUCKET"] == "videos-bucket" &&
      contains(keys(google_secret_manager_secret.this), "geminihooks-notifier-destination")
    )
    error_message = "notifier destination and video bucket settings must reach the functions"
  }
}

run "no_optional_grants_by_default" {
  # Explicit, so TF_VAR_* in the environment cannot change the outcome.
  variables {
    video_bucket = null
    notifier     = {}
    tracing      = { enabled = false }
  }

  assert {
    condition     = length(google_project_iam_member.trace_agent) == 0
    error_message = "without tracing no function may hold roles/telemetry.tracesWriter"
  }

  assert {
    condition     = length(google_storage_bucket_iam_member.collector_writes_videos) == 0
    error_message = "without video_bucket the Collector gets no storage role"
  }
  assert {
    condition = (
      toset(keys(google_secret_manager_secret.this)) == toset(["geminihooks-webhook-secret", "geminihooks-gemini-api-key"]) &&
      toset([for m in google_secret_manager_secret_iam_member.mounted : "${m.member} ${m.secret_id}"]) == toset([
        "serviceAccount:geminihooks-receiver@test-project.iam.gserviceaccount.com geminihooks-webhook-secret",
        "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com geminihooks-gemini-api-key",
        "serviceAccount:geminihooks-workflow@test-project.iam.gserviceaccount.com geminihooks-gemini-api-key",
        "serviceAccount:geminihooks-reconciler@test-project.iam.gserviceaccount.com geminihooks-gemini-api-key",
      ])
    )
    error_message = "without a notifier destination there is no destination secret and no grant on it"
  }
}

run "existing_secrets_are_referenced_not_created" {
  variables {
    create_secrets           = false
    webhook_secret_id        = "existing-webhook"
    gemini_api_key_secret_id = "existing-key"
  }

  assert {
    condition     = length(google_secret_manager_secret.this) == 0
    error_message = "create_secrets = false must not create secrets"
  }
  assert {
    condition = (
      google_cloudfunctions2_function.this["receiver"].service_config[0].secret_volumes[0].secret == "existing-webhook" &&
      toset([for m in google_secret_manager_secret_iam_member.mounted : m.secret_id]) == toset(["existing-webhook", "existing-key"])
    )
    error_message = "existing secret IDs must be mounted and granted"
  }
}

run "named_database_condition" {
  variables {
    firestore_database = "geminihooks"
  }

  assert {
    condition = alltrue([
      for m in google_project_iam_member.datastore_user :
      m.condition[0].expression == "resource.name == \"projects/test-project/databases/geminihooks\""
    ])
    error_message = "datastore.user must be conditioned on the configured database"
  }
}

run "reconciler_off" {
  variables {
    reconciler = { enabled = false }
  }

  assert {
    condition = (
      !contains(keys(google_cloudfunctions2_function.this), "reconciler") &&
      length(google_cloud_scheduler_job.reconcile) == 0 &&
      length(google_service_account.scheduler) == 0 &&
      length(google_pubsub_topic_iam_member.reconciler_publishes_events) == 0 &&
      length(google_monitoring_alert_policy.missed_webhooks) == 0
    )
    error_message = "reconciler.enabled = false must deploy no Reconciler, schedule, identity, grant or alert"
  }
}
