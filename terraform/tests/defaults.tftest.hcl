# What a first `terraform apply` with only the required variables deploys,
# and the rules that keep every deployed function able to serve: no function
# without the configuration it needs, timeouts below the push deadline,
# min <= max instances, a video bucket role the Collector's writes fit, no
# alert that races a metric created in the same apply.

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

run "notifier_is_off_by_default" {
  command = plan

  assert {
    condition     = toset(keys(google_cloudfunctions2_function.this)) == toset(["receiver", "collector", "workflow", "reconciler"])
    error_message = "with only the required variables the Notifier must not be deployed (it has no destination to send to)"
  }
  assert {
    condition     = !contains(keys(google_pubsub_subscription.push), "notifier") && !contains(keys(google_secret_manager_secret.this), "geminihooks-notifier-destination")
    error_message = "no Notifier subscription or destination secret by default"
  }
}

run "enabled_notifier_always_has_its_destination" {
  command = plan
  variables {
    notifier = { enabled = true }
  }

  assert {
    condition = (
      google_cloudfunctions2_function.this["notifier"].service_config[0].environment_variables["NOTIFIER_DESTINATION_FILE"] == "/etc/secrets/notifier/destination" &&
      google_cloudfunctions2_function.this["notifier"].service_config[0].secret_volumes[0].mount_path == "/etc/secrets/notifier" &&
      google_cloudfunctions2_function.this["notifier"].service_config[0].secret_volumes[0].versions[0].path == "destination" &&
      contains(keys(google_secret_manager_secret.this), "geminihooks-notifier-destination") &&
      contains(keys(google_secret_manager_secret_iam_member.mounted), "notifier/geminihooks-notifier-destination")
    )
    error_message = "an enabled Notifier must mount its destination secret as NOTIFIER_DESTINATION_FILE and be able to read it"
  }
  assert {
    condition     = output.secrets.notifier_destination == "geminihooks-notifier-destination"
    error_message = "the secrets output must name the destination secret (scripts/deploy.sh adds its first version)"
  }
}

run "deprecated_destination_enabled_true_is_accepted" {
  command = plan
  variables {
    notifier = { enabled = true, destination_enabled = true }
  }

  assert {
    condition     = length(google_cloudfunctions2_function.this["notifier"].service_config[0].secret_volumes) == 1
    error_message = "notifier.destination_enabled = true (the old way) must keep working"
  }
}

run "function_timeouts_stay_below_ack_deadlines" {
  command = plan
  variables {
    notifier = { enabled = true }
  }

  assert {
    condition = alltrue([
      for k, s in google_pubsub_subscription.push :
      google_cloudfunctions2_function.this[k].service_config[0].timeout_seconds < s.ack_deadline_seconds
      if contains(keys(google_cloudfunctions2_function.this), k)
    ])
    error_message = "every push-fed function's timeout must be below its subscription's ack deadline (the push request timeout)"
  }
  assert {
    condition     = toset([for k, s in google_pubsub_subscription.push : k if contains(keys(google_cloudfunctions2_function.this), k)]) == toset(["collector", "notifier", "workflow"])
    error_message = "the check above must have covered every push-fed function"
  }
}

run "rejects_ack_deadline_below_function_timeout" {
  command = plan
  variables {
    push_subscriptions = { collector = { ack_deadline_seconds = 300 } }
  }
  expect_failures = [google_pubsub_subscription.push]
}

run "rejects_ack_deadline_equal_to_function_timeout" {
  command = plan
  variables {
    notifier           = { enabled = true }
    push_subscriptions = { notifier = { ack_deadline_seconds = 50 } }
  }
  expect_failures = [google_pubsub_subscription.push]
}

run "min_instances_never_exceed_max" {
  command = plan
  variables {
    min_instances = { receiver = 1, collector = 10 }
  }

  assert {
    condition = alltrue([
      for f in google_cloudfunctions2_function.this :
      f.service_config[0].min_instance_count <= f.service_config[0].max_instance_count
    ])
    error_message = "min_instance_count must not exceed max_instance_count"
  }
}

run "rejects_min_instances_above_max" {
  command = plan
  variables {
    min_instances = { collector = 5 }
    max_instances = { collector = 2 }
  }
  expect_failures = [google_cloudfunctions2_function.this]
}

run "video_bucket_role_is_create_only" {
  command = plan
  variables {
    video_bucket = "videos-bucket"
  }

  # objectCreator cannot replace or delete objects. shared/collect writes
  # each video with a does-not-exist precondition and takes 412 as done
  # (TestGCSVideosPutDoesNotOverwrite), which is all the role allows, so a
  # redelivered message after a successful copy succeeds instead of 403.
  assert {
    condition = (
      length(google_storage_bucket_iam_member.collector_writes_videos) == 1 &&
      google_storage_bucket_iam_member.collector_writes_videos[0].bucket == "videos-bucket" &&
      google_storage_bucket_iam_member.collector_writes_videos[0].role == "roles/storage.objectCreator" &&
      google_storage_bucket_iam_member.collector_writes_videos[0].member == "serviceAccount:geminihooks-collector@test-project.iam.gserviceaccount.com" &&
      google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["VIDEO_BUCKET"] == "videos-bucket"
    )
    error_message = "the Collector must hold exactly roles/storage.objectCreator on the video bucket"
  }
}

run "source_zips_age_out" {
  command = plan

  assert {
    condition = (
      length(google_storage_bucket.source.lifecycle_rule) == 1 &&
      length(google_storage_bucket.source.lifecycle_rule[0].action) == 1 &&
      alltrue([for a in google_storage_bucket.source.lifecycle_rule[0].action : a.type == "Delete"]) &&
      length(google_storage_bucket.source.lifecycle_rule[0].condition) == 1 &&
      alltrue([for c in google_storage_bucket.source.lifecycle_rule[0].condition : c.age == 30 && join(",", c.matches_prefix) == "source/"])
    )
    error_message = "source zips must be deleted after source_retention_days (30)"
  }
}

run "first_apply_has_no_metric_alert_race" {
  command = plan

  # An alert on a log-based metric created in the same apply can fail with
  # 404 while Monitoring catches up; no alert may use one.
  assert {
    condition = alltrue(flatten([
      for p in concat(values(google_monitoring_alert_policy.dlq_backlog), google_monitoring_alert_policy.receiver_5xx, google_monitoring_alert_policy.collector_errors) : [
        for c in p.conditions : !strcontains(c.condition_threshold[0].filter, "logging.googleapis.com/user/")
      ]
    ]))
    error_message = "no alert policy may filter on a log-based (user) metric"
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.collector_errors[0].conditions[0].condition_threshold[0].filter, "metric.type = \"logging.googleapis.com/log_entry_count\"")
    error_message = "the Collector error alert must count the built-in log_entry_count metric"
  }
}

run "dashboard_covers_the_pipeline" {
  command = plan

  assert {
    condition = [for w in jsondecode(google_monitoring_dashboard.this[0].dashboard_json).gridLayout.widgets : w.title] == [
      "Webhook deliveries by outcome (per minute)",
      "Receiver responses by status class (per minute)",
      "Events and results published (per minute)",
      "Collection latency, job end → results in Firestore (ms)",
      "Collector errors (ERROR log entries per minute)",
      "Dead-lettered messages waiting (DLQ depth)",
      "Oldest dead-lettered message (age, s)",
      "Push backlog of our consumers (undelivered messages)",
      "Missed webhooks found by the reconciler (per hour)",
    ]
    error_message = "dashboard charts changed"
  }
  assert {
    condition = alltrue([
      for w in jsondecode(google_monitoring_dashboard.this[0].dashboard_json).gridLayout.widgets :
      alltrue([for d in w.xyChart.dataSets : strcontains(d.timeSeriesQuery.timeSeriesFilter.filter, "metric.type = ")])
    ])
    error_message = "every chart series needs a metric type"
  }
  assert {
    condition     = strcontains(jsondecode(google_monitoring_dashboard.this[0].dashboard_json).gridLayout.widgets[5].xyChart.dataSets[0].timeSeriesQuery.timeSeriesFilter.filter, "\"geminihooks-events-dlq-hold\", \"geminihooks-results-dlq-hold\"")
    error_message = "the DLQ depth chart must watch both hold subscriptions"
  }
}

run "dashboard_can_be_disabled" {
  command = plan
  variables {
    dashboard_enabled = false
  }

  assert {
    condition     = length(google_monitoring_dashboard.this) == 0
    error_message = "dashboard_enabled = false must drop the dashboard"
  }
}

run "tracing_exports_to_cloud_trace_by_default" {
  command = plan

  assert {
    condition = alltrue([
      for f in google_cloudfunctions2_function.this :
      f.service_config[0].environment_variables["TRACE_EXPORTER"] == "cloudtrace" && f.service_config[0].environment_variables["TRACE_SAMPLE_RATIO"] == "1"
    ])
    error_message = "every function must export traces to Cloud Trace by default"
  }
  assert {
    condition     = toset([for m in google_project_iam_member.trace_agent : "${m.member} ${m.role}"]) == toset([for k in ["receiver", "collector", "workflow", "reconciler"] : "serviceAccount:geminihooks-${k}@test-project.iam.gserviceaccount.com roles/telemetry.tracesWriter"])
    error_message = "each deployed function needs roles/telemetry.tracesWriter to export"
  }
}

run "tracing_off_exports_nothing" {
  command = plan
  variables {
    tracing = { enabled = false }
  }

  assert {
    condition = alltrue([
      for f in google_cloudfunctions2_function.this :
      !contains(keys(f.service_config[0].environment_variables), "TRACE_EXPORTER")
    ]) && length(google_project_iam_member.trace_agent) == 0
    error_message = "tracing.enabled = false must not configure an exporter or grant telemetry.tracesWriter"
  }
}

run "jwt_webhooks_are_off_by_default" {
  command = plan

  assert {
    condition = (
      google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables["WEBHOOK_JWT_ENABLED"] == "false" &&
      !contains(keys(google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables), "JWT_AUDIENCE")
    )
    error_message = "the Receiver must refuse JWT-signed deliveries unless jwt_webhooks is set"
  }
}

run "jwt_webhooks_with_audience" {
  command = plan
  variables {
    jwt_webhooks = true
    jwt_audience = "https://hooks.example.com/gemini"
  }

  assert {
    condition = (
      google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables["WEBHOOK_JWT_ENABLED"] == "true" &&
      google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables["JWT_AUDIENCE"] == "https://hooks.example.com/gemini"
    )
    error_message = "jwt_webhooks and jwt_audience must reach the Receiver as WEBHOOK_JWT_ENABLED and JWT_AUDIENCE"
  }
}
