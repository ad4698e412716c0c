# Offline tests of the deployment with mocked providers (no API calls):
# exposure, push subscriptions, Firestore, source hashing.
# Run: scripts/tf-check.sh (or `terraform test` with real providers installed).

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
  # Everything deployed (the Notifier is off by default; see defaults.tftest.hcl).
  notifier = { enabled = true }
  subscribers = {
    audit = {
      push_endpoint = "https://audit.example.com/push"
      filter        = "attributes.kind = \"batch\""
    }
    billing = {
      push_endpoint              = "https://billing.example.com/push"
      ack_deadline_seconds       = 120
      max_delivery_attempts      = 10
      oidc_service_account_email = "billing-push@other-project.iam.gserviceaccount.com"
    }
  }
}

run "only_the_receiver_is_public" {
  # Exactly one allUsers binding, on the Receiver.
  assert {
    condition     = google_cloud_run_v2_service_iam_member.receiver_public.member == "allUsers"
    error_message = "the Receiver must be invokable by allUsers (Gemini sends no Google credentials)"
  }
  assert {
    condition     = google_cloud_run_v2_service_iam_member.receiver_public.name == google_cloudfunctions2_function.this["receiver"].name
    error_message = "the allUsers binding must be on the Receiver"
  }
  assert {
    condition = length([
      for m in concat(
        [google_cloud_run_v2_service_iam_member.receiver_public],
        values(google_cloud_run_v2_service_iam_member.push_invoker),
      ) : m if contains(["allUsers", "allAuthenticatedUsers"], m.member)
    ]) == 1
    error_message = "there must be exactly one public invoker binding"
  }
  # Only the Receiver accepts traffic from outside the project.
  assert {
    condition = {
      for k, f in google_cloudfunctions2_function.this : k => f.service_config[0].ingress_settings
      } == {
      receiver   = "ALLOW_ALL"
      collector  = "ALLOW_INTERNAL_ONLY"
      notifier   = "ALLOW_INTERNAL_ONLY"
      workflow   = "ALLOW_INTERNAL_ONLY"
      reconciler = "ALLOW_INTERNAL_ONLY"
    }
    error_message = "only the Receiver may have ALLOW_ALL ingress"
  }
  # Each consumer is invokable by its own push identity only.
  assert {
    condition = {
      for k, m in google_cloud_run_v2_service_iam_member.push_invoker : k => [m.name, m.role, m.member]
      } == {
      collector = ["geminihooks-collector", "roles/run.invoker", "serviceAccount:geminihooks-inv-collector@test-project.iam.gserviceaccount.com"]
      notifier  = ["geminihooks-notifier", "roles/run.invoker", "serviceAccount:geminihooks-inv-notifier@test-project.iam.gserviceaccount.com"]
      workflow  = ["geminihooks-workflow", "roles/run.invoker", "serviceAccount:geminihooks-inv-workflow@test-project.iam.gserviceaccount.com"]
    }
    error_message = "push invokers must be one per consumer, on that consumer only"
  }
}

run "push_subscriptions_have_dlq_retry_and_oidc" {
  assert {
    condition     = toset(keys(google_pubsub_subscription.push)) == toset(["collector", "notifier", "workflow", "sub-audit", "sub-billing"])
    error_message = "expected push subscriptions for the three consumers and both subscribers"
  }
  assert {
    condition = alltrue([
      for s in google_pubsub_subscription.push :
      length(s.dead_letter_policy) == 1 && s.dead_letter_policy[0].max_delivery_attempts >= 5 &&
      length(s.push_config) == 1 && length(s.push_config[0].oidc_token) == 1 &&
      s.push_config[0].oidc_token[0].service_account_email != "" &&
      length(s.retry_policy) == 1
    ])
    error_message = "every push subscription needs a dead_letter_policy, a retry_policy and an oidc_token"
  }
  assert {
    condition = length(distinct([
      for s in google_pubsub_subscription.push : s.push_config[0].oidc_token[0].service_account_email
    ])) == length(google_pubsub_subscription.push)
    error_message = "every push subscription needs its own invoker service account"
  }
  # Defaults mirror shared/topology.
  assert {
    condition = {
      for k, s in google_pubsub_subscription.push : k => [s.name, s.ack_deadline_seconds, s.dead_letter_policy[0].max_delivery_attempts, s.retry_policy[0].minimum_backoff, s.retry_policy[0].maximum_backoff]
      } == {
      collector   = ["geminihooks-collector", 600, 5, "10s", "600s"]
      notifier    = ["geminihooks-notifier", 60, 5, "10s", "600s"]
      workflow    = ["geminihooks-workflow", 120, 5, "10s", "600s"]
      sub-audit   = ["geminihooks-sub-audit", 60, 5, "10s", "600s"]
      sub-billing = ["geminihooks-sub-billing", 120, 10, "10s", "600s"]
    }
    error_message = "push subscription defaults drifted from shared/topology (ack 600/60/120 s, 5 attempts, backoff 10s-600s)"
  }
  assert {
    condition = (
      google_pubsub_subscription.push["collector"].topic == google_pubsub_topic.this["events"].id &&
      google_pubsub_subscription.push["collector"].dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.this["events_dlq"].id &&
      alltrue([for k in ["notifier", "workflow", "sub-audit", "sub-billing"] :
        google_pubsub_subscription.push[k].topic == google_pubsub_topic.this["results"].id &&
        google_pubsub_subscription.push[k].dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.this["results_dlq"].id
      ])
    )
    error_message = "collector reads events (DLQ events-dlq); the others read results (DLQ results-dlq)"
  }
  assert {
    condition     = google_pubsub_subscription.push["workflow"].filter == "attributes:label_workflow_run OR attributes:label_pipeline"
    error_message = "the workflow subscription must only get workflow jobs' and trigger candidates' results (shared/topology.WorkflowFilter)"
  }
  assert {
    condition = (
      google_pubsub_subscription.push["collector"].push_config[0].push_endpoint == google_cloudfunctions2_function.this["collector"].service_config[0].uri &&
      google_pubsub_subscription.push["collector"].push_config[0].oidc_token[0].audience == google_cloudfunctions2_function.this["collector"].service_config[0].uri
    )
    error_message = "the collector subscription must push to the function's run.app URL with that URL as audience"
  }
  assert {
    condition = (
      google_pubsub_subscription.push["sub-audit"].push_config[0].push_endpoint == "https://audit.example.com/push" &&
      google_pubsub_subscription.push["sub-audit"].push_config[0].oidc_token[0].audience == "https://audit.example.com/push" &&
      google_pubsub_subscription.push["sub-audit"].filter == "attributes.kind = \"batch\"" &&
      google_pubsub_subscription.push["sub-billing"].push_config[0].oidc_token[0].service_account_email == "billing-push@other-project.iam.gserviceaccount.com"
    )
    error_message = "subscriber settings (endpoint, audience, filter, given service account) must be applied"
  }
  assert {
    condition     = toset(keys(google_service_account.invoker)) == toset(["collector", "notifier", "workflow", "sub-audit"])
    error_message = "an invoker account is created per consumer and per subscriber without its own account"
  }
  # Pub/Sub service agent: publisher on both DLQs, subscriber on every source subscription.
  assert {
    condition = alltrue([
      for m in concat(values(google_pubsub_topic_iam_member.agent_publishes_dlq), values(google_pubsub_subscription_iam_member.agent_acks_source)) :
      m.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    ])
    error_message = "dead-letter grants must go to the Pub/Sub service agent"
  }
  assert {
    condition = (
      toset([for m in google_pubsub_topic_iam_member.agent_publishes_dlq : "${m.topic} ${m.role}"]) == toset(["geminihooks-events-dlq roles/pubsub.publisher", "geminihooks-results-dlq roles/pubsub.publisher"]) &&
      toset([for m in google_pubsub_subscription_iam_member.agent_acks_source : "${m.subscription} ${m.role}"]) == toset([for s in google_pubsub_subscription.push : "${s.name} roles/pubsub.subscriber"])
    )
    error_message = "the service agent needs publisher on each DLQ topic and subscriber on each push subscription"
  }
  # Dead-lettered messages are retained and watched.
  assert {
    condition = alltrue([
      for k, s in google_pubsub_subscription.dlq_hold :
      s.topic == google_pubsub_topic.this[k].id && s.message_retention_duration == "604800s" && length(s.push_config) == 0
    ]) && length(google_pubsub_subscription.dlq_hold) == 2
    error_message = "each DLQ topic needs a pull hold subscription retaining messages for 7 days"
  }
  assert {
    condition     = google_pubsub_topic.this["events_dlq"].message_retention_duration == "604800s" && google_pubsub_topic.this["results_dlq"].message_retention_duration == "604800s"
    error_message = "DLQ topics retain messages for 7 days"
  }
  assert {
    condition     = length(google_monitoring_alert_policy.dlq_backlog) == 2 && length(google_monitoring_alert_policy.receiver_5xx) == 1 && length(google_monitoring_alert_policy.collector_errors) == 1
    error_message = "expected DLQ, Receiver 5xx and Collector error alerts"
  }
}

run "functions_are_configured" {
  assert {
    condition = {
      for k, f in google_cloudfunctions2_function.this : k => [f.build_config[0].entry_point, f.build_config[0].runtime, f.service_config[0].available_memory, f.service_config[0].timeout_seconds, f.service_config[0].min_instance_count]
      } == {
      receiver   = ["Receiver", "go126", "256M", 30, 0]
      collector  = ["Collector", "go126", "1Gi", 540, 0]
      notifier   = ["Notifier", "go126", "256M", 50, 0]
      workflow   = ["Workflow", "go126", "256M", 110, 0]
      reconciler = ["Reconciler", "go126", "256M", 300, 0]
    }
    error_message = "entry points, runtime, memory, timeouts or min instances are wrong"
  }
  assert {
    condition     = google_cloudfunctions2_function.this["collector"].service_config[0].timeout_seconds <= google_pubsub_subscription.push["collector"].ack_deadline_seconds
    error_message = "the collector may run longer than its push request timeout (the ack deadline)"
  }
  # Secrets come in as files so rotation is picked up.
  assert {
    condition = (
      google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables["GEMINI_WEBHOOK_SECRETS_FILE"] == "/etc/secrets/webhook/secrets" &&
      google_cloudfunctions2_function.this["receiver"].service_config[0].secret_volumes[0].secret == "geminihooks-webhook-secret" &&
      google_cloudfunctions2_function.this["receiver"].service_config[0].secret_volumes[0].versions[0].version == "latest" &&
      google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["GEMINI_API_KEY_FILE"] == "/etc/secrets/gemini/api-key" &&
      google_cloudfunctions2_function.this["workflow"].service_config[0].secret_volumes[0].secret == "geminihooks-gemini-api-key" &&
      google_cloudfunctions2_function.this["notifier"].service_config[0].environment_variables["NOTIFIER_DESTINATION_FILE"] == "/etc/secrets/notifier/destination" &&
      google_cloudfunctions2_function.this["notifier"].service_config[0].secret_volumes[0].secret == "geminihooks-notifier-destination"
    )
    error_message = "secrets must be mounted as volumes at the paths the *_FILE variables name"
  }
  assert {
    condition = alltrue([
      for f in google_cloudfunctions2_function.this :
      length([for e in keys(f.service_config[0].environment_variables) : e if e == "GEMINI_API_KEY" || e == "GEMINI_WEBHOOK_SECRETS"]) == 0 &&
      length(f.service_config[0].secret_environment_variables) == 0
    ])
    error_message = "no secret may be passed as a plain or secret environment variable"
  }
  assert {
    condition = (
      google_cloudfunctions2_function.this["receiver"].service_config[0].environment_variables["EVENTS_TOPIC"] == "geminihooks-events" &&
      google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["RESULTS_TOPIC"] == "geminihooks-results" &&
      google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["MAX_DELIVERY_ATTEMPTS"] == "5" &&
      alltrue([for f in google_cloudfunctions2_function.this : f.service_config[0].environment_variables["GOOGLE_CLOUD_PROJECT"] == "test-project" && f.service_config[0].environment_variables["FIRESTORE_DATABASE"] == "(default)"])
    )
    error_message = "function environment does not match docs/design.md"
  }
  assert {
    condition     = output.receiver_url == "https://europe-west1-test-project.cloudfunctions.net/geminihooks-receiver"
    error_message = "receiver_url must be the deterministic cloudfunctions.net URL"
  }
}

run "firestore_ttl_and_indexes" {
  assert {
    condition = (
      google_firestore_database.this[0].type == "FIRESTORE_NATIVE" &&
      google_firestore_field.deliveries_ttl.collection == "deliveries" &&
      google_firestore_field.deliveries_ttl.field == "expire_at" &&
      length(google_firestore_field.deliveries_ttl.ttl_config) == 1
    )
    error_message = "deliveries.expire_at needs a TTL policy on a Firestore Native database"
  }
  assert {
    condition = toset([
      for i in google_firestore_index.this : join(" ", concat([i.collection], [for f in i.fields : "${f.field_path}:${f.order}"]))
      ]) == toset([
      "jobs state:ASCENDING updated_at:DESCENDING",
      "jobs collection_state:ASCENDING updated_at:ASCENDING",
      "jobs collection_state:ASCENDING collect_error.code:ASCENDING updated_at:ASCENDING",
    ])
    error_message = "composite indexes for the Go queries are missing or wrong"
  }
  assert {
    condition = (
      google_firestore_field.jobs_next_check_at[0].collection == "jobs" &&
      google_firestore_field.jobs_next_check_at[0].field == "next_check_at" &&
      [for i in google_firestore_field.jobs_next_check_at[0].index_config[0].indexes : i.order] == ["ASCENDING"]
    )
    error_message = "the Reconciler's due query needs the ascending single-field index on jobs.next_check_at"
  }
}

run "source_v1" {
  command = plan

  override_data {
    target = data.archive_file.source
    values = {
      output_sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
      output_path   = "/tmp/geminihooks-source.zip"
    }
  }

  assert {
    condition     = google_storage_bucket_object.source.name == "source/geminihooks-1111111111111111111111111111111111111111111111111111111111111111.zip"
    error_message = "the source object must be named by the zip's content hash"
  }
  assert {
    condition     = alltrue([for f in google_cloudfunctions2_function.this : f.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.source.name])
    error_message = "every function must build from the content-addressed object"
  }
}

run "source_v2" {
  command = plan

  override_data {
    target = data.archive_file.source
    values = {
      output_sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
      output_path   = "/tmp/geminihooks-source.zip"
    }
  }

  assert {
    condition     = output.source_object != run.source_v1.source_object
    error_message = "a source change must produce a new object name (and so a redeploy)"
  }
  assert {
    condition     = endswith(output.source_object, "/source/geminihooks-2222222222222222222222222222222222222222222222222222222222222222.zip")
    error_message = "source_object output must name the new object"
  }
}

run "optional_parts_can_be_disabled" {
  variables {
    notifier         = { enabled = false }
    workflow_enabled = false
    reconciler       = { enabled = false }
    subscribers      = {}
    alerts           = { enabled = false }
  }

  assert {
    condition     = toset(keys(google_cloudfunctions2_function.this)) == toset(["receiver", "collector"]) && toset(keys(google_pubsub_subscription.push)) == toset(["collector"])
    error_message = "disabled functions must not be deployed or subscribed"
  }
  assert {
    condition     = length(google_monitoring_alert_policy.dlq_backlog) == 0 && length(google_monitoring_alert_policy.receiver_5xx) == 0
    error_message = "alerts.enabled = false must drop the alert policies"
  }
}
