# Topics:
#   events       Receiver → Collector (one message per recorded Gemini event)
#   results      Collector → Notifier, Workflow and your subscribers
#   *-dlq        dead-letter topics, each with a pull "hold" subscription so
#                dead-lettered messages are retained, visible and alerted on.
resource "google_pubsub_topic" "this" {
  for_each = local.topics

  project = var.project_id
  name    = each.value
  labels  = local.labels
  # Dead-letter topics keep messages for 7 days even after the hold
  # subscription acknowledged them (replay with seek).
  message_retention_duration = contains(local.dlq_topics, each.key) ? "604800s" : null

  depends_on = [google_project_service.enabled]
}

# Every push subscription: our consumers (push to the function's run.app URL,
# which Pub/Sub from the same project reaches despite internal-only ingress)
# and var.subscribers. All have the shared retry policy, a dead-letter policy
# and an OIDC token from a dedicated service account.
resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions

  project = var.project_id
  name    = each.value.name
  topic   = google_pubsub_topic.this[each.value.topic].id
  labels  = local.labels

  # The push request timeout equals the ack deadline.
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  filter                     = each.value.filter
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = "" # never expire for inactivity
  }

  retry_policy {
    minimum_backoff = var.retry_policy.minimum_backoff
    maximum_backoff = var.retry_policy.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this[each.value.dlq].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  push_config {
    push_endpoint = each.value.function != null ? google_cloudfunctions2_function.this[each.value.function].service_config[0].uri : each.value.push_endpoint

    oidc_token {
      service_account_email = each.value.invoker != null ? local.invoker_email[each.value.invoker] : each.value.external_invoker
      # Cloud Run accepts its own URL as audience.
      audience = each.value.function != null ? google_cloudfunctions2_function.this[each.value.function].service_config[0].uri : each.value.audience
    }
  }

  lifecycle {
    # The ack deadline is the push request timeout: a function allowed to run
    # longer gets its successful work redelivered (and finally dead-lettered).
    precondition {
      condition     = each.value.function == null || try(local.functions[each.value.function].timeout < each.value.ack_deadline_seconds, false)
      error_message = "The ${each.value.name} subscription's ack deadline (${each.value.ack_deadline_seconds} s) must exceed its function's timeout (${try(local.functions[each.value.function].timeout, "?")} s): raise push_subscriptions.${coalesce(each.value.function, "?")}.ack_deadline_seconds."
    }
  }

  # The DLQ forwarding grants must exist before the first message fails.
  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dlq,
    google_cloud_run_v2_service_iam_member.push_invoker,
  ]
}

# Pull subscriptions on the dead-letter topics: without a subscription a
# dead-lettered message would be dropped. Their backlog is the DLQ depth the
# alert in monitoring.tf watches; inspect with
#   gcloud pubsub subscriptions pull <name> --limit=10
resource "google_pubsub_subscription" "dlq_hold" {
  for_each = toset(local.dlq_topics)

  project = var.project_id
  name    = "${local.topics[each.key]}-hold"
  topic   = google_pubsub_topic.this[each.key].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}
