# The four functions, all built from one zip of the Go module. The buildpack
# generates a main that blank-imports the root package (which imports every
# functions/* package) and serves the entry point named by FUNCTION_TARGET.
# scripts/buildpack-check.sh reproduces that build offline.

data "archive_file" "source" {
  type        = "zip"
  source_dir  = local.source_dir
  output_path = "${path.module}/.build/geminihooks-source.zip"
  excludes    = local.source_excludes
}

resource "google_storage_bucket" "source" {
  project  = var.project_id
  name     = "${var.project_id}-${local.p}-source"
  location = var.region
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # Every code change uploads a new content-addressed zip. A function needs
  # its zip only while Cloud Build builds it; an aged-out current zip is
  # uploaded again by the next apply (the object resource sees it missing),
  # before any function that would rebuild from it.
  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age            = var.source_retention_days
      matches_prefix = ["source/"]
    }
  }

  depends_on = [google_project_service.enabled]
}

# Named by the zip's content hash: any source change is a new object, hence a
# changed storage_source and a rebuild of every function (a fixed name would
# leave the functions on the old code; terraform-provider-google #1938).
resource "google_storage_bucket_object" "source" {
  bucket       = google_storage_bucket.source.name
  name         = "source/${local.p}-${data.archive_file.source.output_sha256}.zip"
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${local.p}-functions"
  format        = "DOCKER"
  description   = "Images of the geminihooks functions (built by Cloud Build)."
  labels        = local.labels

  # Every deploy pushes a new image; keep the recent ones for rollbacks.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloudfunctions2_function" "this" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = "${local.p}-${each.key}"
  description = "geminihooks ${each.value.entry_point}"
  labels      = local.labels

  build_config {
    runtime           = var.runtime
    entry_point       = each.value.entry_point
    service_account   = google_service_account.builder.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory      = each.value.memory
    timeout_seconds       = each.value.timeout
    min_instance_count    = var.min_instances[each.key]
    max_instance_count    = var.max_instances[each.key]
    ingress_settings      = each.value.ingress
    service_account_email = local.runtime_email[each.key]
    # No traffic splitting: a deploy replaces the code everywhere at once.
    all_traffic_on_latest_revision = true
    environment_variables          = local.function_env[each.key]

    dynamic "secret_volumes" {
      for_each = local.secret_mounts[each.key]
      content {
        mount_path = secret_volumes.value.dir
        project_id = var.project_id
        secret     = local.secret_ref[secret_volumes.value.secret]
        versions {
          path    = secret_volumes.value.file
          version = "latest"
        }
      }
    }
  }

  lifecycle {
    # The Collector's budget, plus 60 s to flush and checkpoint, must end
    # before its timeout (less the 60 s between its 480 s handler deadline and
    # the 540 s timeout); the ack deadline exceeds the timeout (pubsub.tf).
    precondition {
      condition     = each.key != "collector" || var.collect_time_budget + 120 <= each.value.timeout
      error_message = "collect_time_budget (${var.collect_time_budget} s) + 120 s must not exceed the Collector's timeout (${each.value.timeout} s): the handler's deadline (timeout - 60 s) must leave 60 s after the budget to flush and checkpoint."
    }
    precondition {
      condition     = var.min_instances[each.key] <= var.max_instances[each.key]
      error_message = "min_instances.${each.key} (${var.min_instances[each.key]}) must not exceed max_instances.${each.key} (${var.max_instances[each.key]})."
    }
  }

  # A revision that mounts a secret fails to start unless its service account
  # can read it, and the datastore grant must exist before the first request.
  depends_on = [
    google_secret_manager_secret_iam_member.mounted,
    google_project_iam_member.datastore_user,
    google_pubsub_topic_iam_member.receiver_publishes_events,
    google_pubsub_topic_iam_member.collector_publishes_results,
    google_pubsub_topic_iam_member.collector_publishes_continuations,
    google_pubsub_topic_iam_member.reconciler_publishes_events,
    google_project_iam_member.builder_logs,
    google_artifact_registry_repository_iam_member.builder_pushes_images,
    google_storage_bucket_iam_member.builder_reads_source,
    google_project_iam_member.trace_agent,
  ]
}
