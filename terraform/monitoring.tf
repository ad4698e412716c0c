# Alerts, sent to var.notification_channels:
#   - a dead-letter topic has messages (its hold subscription's backlog > 0);
#   - the Receiver answers 5xx to more than alerts.receiver_5xx_ratio of requests
#     (Gemini then retries; persistent 5xx means lost events after its retries);
#   - the Collector logs errors (severity >= ERROR).
# and the dashboard (dashboard.tf).
#
# No alert here uses a log-based metric: Cloud Monitoring may answer 404 for
# several minutes for a log-based metric created in the same apply, which
# failed first deploys (a known provider issue). The Collector alert counts
# the built-in logging.googleapis.com/log_entry_count instead, which exists
# in every project. Dashboards do not validate metric types, so they may use
# the log-based metrics in dashboard.tf. If you add an alert on a log-based
# metric, create the metric in an earlier apply or use a log-match condition.

resource "google_monitoring_alert_policy" "dlq_backlog" {
  for_each = var.alerts.enabled ? toset(local.dlq_topics) : toset([])

  project               = var.project_id
  display_name          = "${local.topics[each.key]}: dead-lettered messages"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "${google_pubsub_subscription.dlq_hold[each.key].name} backlog > 0"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dlq_hold[each.key].name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages exhausted their delivery attempts and were dead-lettered to `${local.topics[each.key]}`. Inspect them with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dlq_hold[each.key].name} --limit=10` (without --auto-ack), fix the cause, then republish and acknowledge them."
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "receiver_5xx" {
  count = var.alerts.enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${local.p}-receiver: 5xx responses"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "5xx share of Receiver requests > ${var.alerts.receiver_5xx_ratio}"
    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloudfunctions2_function.this["receiver"].name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloudfunctions2_function.this["receiver"].name}\" AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alerts.receiver_5xx_ratio
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Receiver fails Gemini webhook deliveries (Firestore or Pub/Sub errors, or a missing webhook secret). Gemini retries, but events are lost once its retries run out. Check the function's logs."
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "collector_errors" {
  count = var.alerts.enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${local.p}-collector: errors"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "Collector ERROR log entries > ${var.alerts.collector_error_count} in 5 min"
    condition_threshold {
      filter          = local.collector_errors_filter
      comparison      = "COMPARISON_GT"
      threshold_value = var.alerts.collector_error_count
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Collector logged errors while fetching Gemini results. Transient errors are retried by Pub/Sub (up to the dead-letter policy); permanent ones mark the job collect_failed. Check the function's logs."
  }

  depends_on = [google_project_service.enabled]
}

locals {
  # Built-in per-severity log entry count of the Collector's service: exists
  # before the first log line, unlike a log-based metric.
  collector_errors_filter = join(" AND ", [
    "resource.type = \"cloud_run_revision\"",
    "resource.labels.service_name = \"${local.p}-collector\"",
    "metric.type = \"logging.googleapis.com/log_entry_count\"",
    "metric.labels.severity = one_of(\"ERROR\", \"CRITICAL\", \"ALERT\", \"EMERGENCY\")",
  ])
}
