# The operations dashboard "<name_prefix>": one page from webhook to results.
#
# Widgets are a list of Cloud Monitoring dashboard widgets
# (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards#Widget)
# in local.dashboard_widgets, laid out two per row. To add a chart, append
# an entry to one of the lists below (or a new list to the concat); nothing
# else changes. Charts may use log-based metrics created in the same apply:
# dashboards do not validate metric types (alerts do; see monitoring.tf).

# Receiver deliveries by outcome, from its "delivery handled" log line
# (status: accepted, duplicate, invalid). Rejected requests (400/401/413)
# show in the response-code chart instead.
resource "google_logging_metric" "deliveries" {
  project     = var.project_id
  name        = "${local.p}-deliveries"
  description = "Webhook deliveries handled by the Receiver, by outcome (accepted, duplicate, invalid)."
  filter = join(" AND ", [
    "resource.type = \"cloud_run_revision\"",
    "resource.labels.service_name = \"${local.p}-receiver\"",
    "jsonPayload.message = \"delivery handled\"",
  ])
  label_extractors = {
    status = "EXTRACT(jsonPayload.status)"
  }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "status"
      value_type  = "STRING"
      description = "accepted, duplicate or invalid"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Collection latency: from Gemini's event time (the job finished) to the
# results being in Firestore, from the Collector's "collected" log line
# (latency_ms).
resource "google_logging_metric" "collection_latency" {
  project     = var.project_id
  name        = "${local.p}-collection-latency"
  description = "Time from a job's end (Gemini event time) to its results collected in Firestore."
  filter = join(" AND ", [
    "resource.type = \"cloud_run_revision\"",
    "resource.labels.service_name = \"${local.p}-collector\"",
    "jsonPayload.message = \"collected\"",
  ])
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
  }

  bucket_options {
    # 50 ms … ~3 h in 40 buckets.
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.4
      scale              = 50
    }
  }

  depends_on = [google_project_service.enabled]
}

locals {
  run_service = { for k, _ in local.functions : k => "${local.p}-${k}" }

  # xy_chart: one line chart; each series is [legend, filter, aligner,
  # reducer, group_by].
  dashboard_core_charts = [
    {
      title = "Webhook deliveries by outcome (per minute)"
      series = [["", "metric.type = \"logging.googleapis.com/user/${google_logging_metric.deliveries.name}\" AND resource.type = \"cloud_run_revision\"",
      "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.status"]]]
    },
    {
      title = "Receiver responses by status class (per minute)"
      series = [["", "metric.type = \"run.googleapis.com/request_count\" AND resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${local.run_service["receiver"]}\"",
      "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.response_code_class"]]]
    },
    {
      title = "Events and results published (per minute)"
      series = [["", "metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\" AND resource.type = \"pubsub_topic\" AND resource.labels.topic_id = one_of(\"${local.topics.events}\", \"${local.topics.results}\")",
      "ALIGN_DELTA", "REDUCE_SUM", ["resource.label.topic_id"]]]
    },
    {
      title = "Collection latency, job end → results in Firestore (ms)"
      series = [
        ["p50", "metric.type = \"logging.googleapis.com/user/${google_logging_metric.collection_latency.name}\" AND resource.type = \"cloud_run_revision\"", "ALIGN_DELTA", "REDUCE_PERCENTILE_50", []],
        ["p95", "metric.type = \"logging.googleapis.com/user/${google_logging_metric.collection_latency.name}\" AND resource.type = \"cloud_run_revision\"", "ALIGN_DELTA", "REDUCE_PERCENTILE_95", []],
      ]
    },
    {
      title  = "Collector errors (ERROR log entries per minute)"
      series = [["", local.collector_errors_filter, "ALIGN_DELTA", "REDUCE_SUM", []]]
    },
    {
      title = "Dead-lettered messages waiting (DLQ depth)"
      series = [["", "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = one_of(${join(", ", [for k in local.dlq_topics : "\"${local.topics[k]}-hold\""])})",
      "ALIGN_MAX", "REDUCE_MAX", ["resource.label.subscription_id"]]]
    },
    {
      title = "Oldest dead-lettered message (age, s)"
      series = [["", "metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = one_of(${join(", ", [for k in local.dlq_topics : "\"${local.topics[k]}-hold\""])})",
      "ALIGN_MAX", "REDUCE_MAX", ["resource.label.subscription_id"]]]
    },
    {
      title = "Push backlog of our consumers (undelivered messages)"
      series = [["", "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = one_of(${join(", ", [for k, s in local.push_subscriptions : "\"${s.name}\""])})",
      "ALIGN_MAX", "REDUCE_MAX", ["resource.label.subscription_id"]]]
    },
  ]

  # The Reconciler logs each job state it finds without a webhook ("missed
  # webhook"); its log-based metric is <prefix>-missed-webhooks
  # (reconciler_monitoring.tf). The chart appears when it is deployed.
  dashboard_reconciler_charts = contains(keys(local.functions), "reconciler") ? [{
    title  = "Missed webhooks found by the reconciler (per hour)"
    series = [["", "metric.type = \"logging.googleapis.com/user/${local.p}-missed-webhooks\" AND resource.type = \"cloud_run_revision\"", "ALIGN_DELTA", "REDUCE_SUM", []]]
  }] : []

  # Append charts here (same shape as above).
  dashboard_charts = concat(local.dashboard_core_charts, local.dashboard_reconciler_charts)

  dashboard_widgets = [
    for c in local.dashboard_charts : {
      title = c.title
      xyChart = {
        chartOptions = { mode = "COLOR" }
        dataSets = [
          for s in c.series : merge(
            {
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = s[1]
                  aggregation = merge(
                    { alignmentPeriod = "60s", perSeriesAligner = s[2], crossSeriesReducer = s[3] },
                    { for k, v in { groupByFields = s[4] } : k => v if length(v) > 0 },
                  )
                }
              }
            },
            { for k, v in { legendTemplate = s[0] } : k => v if v != "" },
          )
        ]
      }
    }
  ]
}

resource "google_monitoring_dashboard" "this" {
  count = var.dashboard_enabled ? 1 : 0

  project = var.project_id
  dashboard_json = jsonencode({
    displayName = local.p
    labels      = { geminihooks = "" }
    gridLayout = {
      columns = 2
      widgets = local.dashboard_widgets
    }
  })

  depends_on = [google_project_service.enabled]
}
