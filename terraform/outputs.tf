output "receiver_url" {
  description = "URL to register as the Gemini webhook endpoint (known before the function exists; see scripts/deploy.sh)."
  value       = local.receiver_url
}

output "receiver_run_url" {
  description = "The Receiver's run.app URL (serves the same function)."
  value       = google_cloudfunctions2_function.this["receiver"].service_config[0].uri
}

output "function_uris" {
  description = "run.app URL of every deployed function, by key."
  value       = { for k, f in google_cloudfunctions2_function.this : k => f.service_config[0].uri }
}

output "events_topic" {
  description = "Topic the Receiver publishes job events to (EVENTS_TOPIC)."
  value       = google_pubsub_topic.this["events"].name
}

output "results_topic" {
  description = "Topic the Collector publishes results events to; subscribe your own consumers here."
  value       = google_pubsub_topic.this["results"].name
}

output "dlq_topics" {
  description = "Dead-letter topics, by source topic."
  value = {
    events  = google_pubsub_topic.this["events_dlq"].name
    results = google_pubsub_topic.this["results_dlq"].name
  }
}

output "dlq_hold_subscriptions" {
  description = "Pull subscriptions that retain dead-lettered messages (inspect with gcloud pubsub subscriptions pull)."
  value       = { for k, s in google_pubsub_subscription.dlq_hold : k => s.name }
}

output "push_subscriptions" {
  description = "Push subscriptions by key (collector, notifier, workflow, sub-<name>)."
  value       = { for k, s in google_pubsub_subscription.push : k => s.name }
}

output "firestore_database" {
  description = "Firestore database ID (FIRESTORE_DATABASE)."
  value       = local.firestore_database
}

output "service_accounts" {
  description = "Service account emails: runtime identity per function, push invoker per subscription, and the build identity."
  value = {
    runtime = local.runtime_email
    invoker = local.invoker_email
    builder = local.builder_email
  }
}

output "secrets" {
  description = "Secret IDs: add versions with `gcloud secrets versions add ID --data-file=-`."
  value = {
    webhook              = local.webhook_secret_id
    gemini_api_key       = local.api_key_secret_id
    notifier_destination = local.notifier_dest_enabled ? local.notifier_secret_id : null
  }
}

output "source_object" {
  description = "Content-addressed source zip object the functions were built from."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}

output "dashboard_url" {
  description = "The Cloud Monitoring dashboard of this deployment (empty when dashboard_enabled = false)."
  value       = var.dashboard_enabled ? "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.this[0].id), 3)}?project=${var.project_id}" : ""
}
