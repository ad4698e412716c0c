# What the Reconciler finds is worth knowing:
#   - "missed webhook": a job state the sweep found by reading Gemini's API
#     that no webhook announced (lost deliveries, a disabled webhook, events
#     Gemini never sends). A few are normal (failed videos send no event);
#     a burst means webhooks are not arriving.
#   - "gemini webhook disabled after failed deliveries" (ERROR): Gemini
#     stopped delivering to the Receiver; every job now waits for its
#     scheduled check.
# Each has a log-based metric (counted on the dashboard and in Metrics
# Explorer) and an alert. The alerts are log-match conditions, not
# thresholds on the metrics: an alert on a log-based metric created in the
# same apply can fail the deploy (monitoring.tf).

locals {
  reconciler_log_filter = join(" AND ", [
    "resource.type = \"cloud_run_revision\"",
    "resource.labels.service_name = \"${local.p}-reconciler\"",
  ])
  missed_webhook_filter   = "${local.reconciler_log_filter} AND jsonPayload.message = \"missed webhook\""
  webhook_disabled_filter = "${local.reconciler_log_filter} AND severity >= ERROR AND jsonPayload.message = \"gemini webhook disabled after failed deliveries\""
}

resource "google_logging_metric" "missed_webhooks" {
  count = var.reconciler.enabled ? 1 : 0

  project     = var.project_id
  name        = "${local.p}-missed-webhooks"
  description = "Job states the Reconciler found by reading Gemini's API that no webhook announced, by job kind and state."
  filter      = local.missed_webhook_filter
  label_extractors = {
    kind  = "EXTRACT(jsonPayload.kind)"
    state = "EXTRACT(jsonPayload.state)"
  }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "kind"
      value_type  = "STRING"
      description = "batch, video or interaction"
    }
    labels {
      key         = "state"
      value_type  = "STRING"
      description = "the state the API showed"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "webhook_disabled" {
  count = var.reconciler.enabled ? 1 : 0

  project     = var.project_id
  name        = "${local.p}-gemini-webhook-disabled"
  description = "Reconciler sweeps that found a Gemini webhook in state disabled_due_to_failed_deliveries."
  filter      = local.webhook_disabled_filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "missed_webhooks" {
  count = var.alerts.enabled && var.reconciler.enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${local.p}-reconciler: missed webhooks"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "Reconciler logged \"missed webhook\""
    condition_matched_log {
      filter = local.missed_webhook_filter
      label_extractors = {
        job_id = "EXTRACT(jsonPayload.job_id)"
        state  = "EXTRACT(jsonPayload.state)"
      }
    }
  }

  alert_strategy {
    # One notification per hour at most: a disabled webhook makes every job
    # a missed webhook until it is fixed.
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Reconciler found a job state by reading Gemini's API that no webhook delivered (job $${log.extracted_label.job_id}, state $${log.extracted_label.state}); it was collected anyway. Occasional ones are expected (Gemini sends no event for a failed video, nor *.cancelled to a static webhook). Many mean deliveries are failing: check the Receiver's 5xx alert, the webhook's state (`geminihooks webhooks list`) and the `${local.p}-missed-webhooks` metric."
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "webhook_disabled" {
  count = var.alerts.enabled && var.reconciler.enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${local.p}-reconciler: Gemini webhook disabled"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "Gemini webhook in disabled_due_to_failed_deliveries"
    condition_matched_log {
      filter = local.webhook_disabled_filter
      label_extractors = {
        webhook = "EXTRACT(jsonPayload.webhook)"
      }
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Gemini disabled webhook $${log.extracted_label.webhook} after repeated failed deliveries: no job events reach the Receiver, and every job waits for the Reconciler's scheduled check (minutes to hours). Fix what made deliveries fail (Receiver errors, a rotated secret), then re-enable it: `geminihooks webhooks update ID --state enabled`, or set `reconciler = { reenable_webhooks = true }`."
  }

  depends_on = [google_project_service.enabled]
}
