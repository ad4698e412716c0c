locals {
  p = var.name_prefix

  labels = merge({ app = "geminihooks", "managed-by" = "terraform" }, var.labels)

  # Topic names; shared/topology builds the same names for the local stack.
  topics = {
    events      = "${local.p}-events"
    results     = "${local.p}-results"
    events_dlq  = "${local.p}-events-dlq"
    results_dlq = "${local.p}-results-dlq"
  }
  dlq_topics = ["events_dlq", "results_dlq"]

  webhook_secret_id = coalesce(var.webhook_secret_id, "${local.p}-webhook-secret")
  api_key_secret_id = coalesce(var.gemini_api_key_secret_id, "${local.p}-gemini-api-key")
  # An enabled Notifier always mounts its destination: without one it fails
  # every results event, and they all dead-letter (issue 14).
  notifier_dest_enabled = var.notifier.enabled
  notifier_secret_id    = coalesce(var.notifier.destination_secret_id, "${local.p}-notifier-destination")

  # Deterministic: the Receiver URL is known before the function exists, so
  # scripts/deploy.sh can register the Gemini webhook (whose signing secret the
  # Receiver needs at deploy time) before the full apply. Gen2 functions keep
  # serving at this cloudfunctions.net address besides their run.app URL.
  receiver_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.p}-receiver"

  firestore_database_name = "projects/${var.project_id}/databases/${var.firestore_database}"

  # ------------------------------------------------------------ functions
  # Every function is built from the same source zip; the entry point picks
  # the functions.HTTP registration (FUNCTION_TARGET). Adding a function is
  # one entry here (plus its secret_mounts, and min/max_instances keys);
  # scripts/deploy-shape.sh then starts it with exactly this configuration and
  # fails until internal/deployshape has a request for its entry point.
  # A push-fed function's timeout must stay below its subscription's ack
  # deadline (the push request timeout): pubsub.tf checks it on every plan.
  all_functions = {
    receiver = {
      entry_point = "Receiver"
      memory      = "256M"
      timeout     = 30
      # Gemini cannot attach Google credentials: the endpoint is public and the
      # Standard Webhooks signature is the authentication.
      ingress = "ALLOW_ALL"
      # Dynamic (JWT-signed) webhooks are refused unless jwt_webhooks; the
      # switch is always explicit so a plan shows it.
      env = merge(
        {
          EVENTS_TOPIC        = local.topics.events
          WEBHOOK_JWT_ENABLED = tostring(var.jwt_webhooks)
        },
        var.jwt_webhooks && var.jwt_audience != null ? { JWT_AUDIENCE = var.jwt_audience } : {},
      )
    }
    collector = {
      entry_point = "Collector"
      memory      = "1Gi" # streams result files (batch output, videos)
      timeout     = 540
      # Pub/Sub push from the same project counts as internal traffic on the
      # run.app URL, which is what the subscriptions push to.
      ingress = "ALLOW_INTERNAL_ONLY"
      env = merge(
        {
          RESULTS_TOPIC = local.topics.results
          # Continuations of large batch outputs go back on the events topic.
          EVENTS_TOPIC        = local.topics.events
          COLLECT_TIME_BUDGET = "${var.collect_time_budget}s"
        },
        var.video_bucket == null ? {} : { VIDEO_BUCKET = var.video_bucket },
      )
    }
    notifier = {
      entry_point = "Notifier"
      memory      = "256M"
      timeout     = 50 # < its subscription's 60 s ack deadline
      ingress     = "ALLOW_INTERNAL_ONLY"
      env         = {}
    }
    workflow = {
      entry_point = "Workflow"
      memory      = "256M"
      timeout     = 110 # < its subscription's 120 s ack deadline
      ingress     = "ALLOW_INTERNAL_ONLY"
      env         = {}
    }
    # Called by Cloud Scheduler (scheduler.tf) with an OIDC token; a sweep
    # stops after shared/topology.ReconcilerDeadline (240 s) < 300 s timeout
    # < the job's 320 s attempt deadline. Cloud Scheduler counts as internal
    # traffic for Cloud Run ingress.
    reconciler = {
      entry_point = "Reconciler"
      memory      = "256M"
      timeout     = 300
      ingress     = "ALLOW_INTERNAL_ONLY"
      env = merge(
        {
          EVENTS_TOPIC                = local.topics.events
          RECONCILE_FIRST_CHECK       = var.reconciler.first_check
          RECONCILE_STUCK_AFTER       = var.reconciler.stuck_after
          RECONCILE_LOOKBACK          = var.reconciler.lookback
          RECONCILE_LIMIT             = tostring(var.reconciler.limit)
          RECONCILE_REENABLE_WEBHOOKS = tostring(var.reconciler.reenable_webhooks)
        },
        var.reconciler.list_batches ? {} : { RECONCILE_LIST_BATCHES = "false" },
      )
    }
  }
  functions = {
    for k, v in local.all_functions : k => v
    if !(k == "notifier" && !var.notifier.enabled) && !(k == "workflow" && !var.workflow_enabled) && !(k == "reconciler" && !var.reconciler.enabled)
  }

  # Secrets are mounted as files (not env vars) so a new `latest` version is
  # picked up without a redeploy. Each mount also yields exactly one
  # secretAccessor grant for that function on that secret (iam.tf).
  secret_mounts = {
    receiver = [{
      env = "GEMINI_WEBHOOK_SECRETS_FILE", dir = "/etc/secrets/webhook", file = "secrets", secret = local.webhook_secret_id
    }]
    collector = [{
      env = "GEMINI_API_KEY_FILE", dir = "/etc/secrets/gemini", file = "api-key", secret = local.api_key_secret_id
    }]
    workflow = [{
      env = "GEMINI_API_KEY_FILE", dir = "/etc/secrets/gemini", file = "api-key", secret = local.api_key_secret_id
    }]
    reconciler = [{
      env = "GEMINI_API_KEY_FILE", dir = "/etc/secrets/gemini", file = "api-key", secret = local.api_key_secret_id
    }]
    notifier = local.notifier_dest_enabled ? [{
      env = "NOTIFIER_DESTINATION_FILE", dir = "/etc/secrets/notifier", file = "destination", secret = local.notifier_secret_id
    }] : []
  }

  # Consumers dead-letter after this many attempts; the Go code reads the same
  # number (MAX_DELIVERY_ATTEMPTS) to know a delivery is the last one.
  consumer_attempts = {
    collector = var.push_subscriptions.collector.max_delivery_attempts
    notifier  = var.push_subscriptions.notifier.max_delivery_attempts
    workflow  = var.push_subscriptions.workflow.max_delivery_attempts
  }

  function_env = {
    for k, f in local.functions : k => merge(
      {
        GOOGLE_CLOUD_PROJECT = var.project_id
        FIRESTORE_DATABASE   = var.firestore_database
        LOG_EXECUTION_ID     = "true"
      },
      # shared/tracing: spans go to Cloud Trace only when tracing is enabled;
      # trace context is propagated (and logged) either way.
      var.tracing.enabled ? {
        TRACE_EXPORTER     = "cloudtrace"
        TRACE_SAMPLE_RATIO = tostring(var.tracing.sample_ratio)
      } : {},
      contains(keys(local.consumer_attempts), k) ? { MAX_DELIVERY_ATTEMPTS = tostring(local.consumer_attempts[k]) } : {},
      f.env,
      { for m in local.secret_mounts[k] : m.env => "${m.dir}/${m.file}" },
    )
  }

  # ------------------------------------------------------------ push subscriptions
  # Our consumers: one push subscription each, to the function's run.app URL.
  own_push = {
    for k, s in {
      collector = merge(var.push_subscriptions.collector, { topic = "events", dlq = "events_dlq" })
      notifier  = merge(var.push_subscriptions.notifier, { topic = "results", dlq = "results_dlq" })
      workflow  = merge(var.push_subscriptions.workflow, { topic = "results", dlq = "results_dlq" })
    } : k => s if contains(keys(local.functions), k)
  }

  # Every push subscription, ours and the user's, keyed by subscription suffix.
  push_subscriptions = merge(
    {
      for k, s in local.own_push : k => {
        name                  = "${local.p}-${k}"
        topic                 = s.topic
        dlq                   = s.dlq
        filter                = s.filter
        ack_deadline_seconds  = s.ack_deadline_seconds
        max_delivery_attempts = s.max_delivery_attempts
        function              = k
        invoker               = k # key in google_service_account.invoker
        external_invoker      = null
        push_endpoint         = null
        audience              = null
      }
    },
    {
      for name, s in var.subscribers : "sub-${name}" => {
        name                  = "${local.p}-sub-${name}"
        topic                 = "results"
        dlq                   = "results_dlq"
        filter                = s.filter
        ack_deadline_seconds  = s.ack_deadline_seconds
        max_delivery_attempts = s.max_delivery_attempts
        function              = null
        invoker               = s.oidc_service_account_email == null ? "sub-${name}" : null
        external_invoker      = s.oidc_service_account_email
        push_endpoint         = s.push_endpoint
        audience              = coalesce(s.oidc_audience, s.push_endpoint)
      }
    },
  )

  # Invoker service accounts we create: one per own consumer, one per user
  # subscriber without its own account. Account IDs are limited to 30
  # characters, so user subscribers get a hash of their name.
  invokers = merge(
    { for k in keys(local.own_push) : k => { account_id = "${local.p}-inv-${k}", display = "Pub/Sub push to ${local.p}-${k}" } },
    {
      for name, s in var.subscribers : "sub-${name}" => {
        account_id = "${local.p}-s-${substr(sha1(name), 0, 8)}"
        display    = "Pub/Sub push to subscriber ${name}"
      } if s.oidc_service_account_email == null
    },
  )

  # ------------------------------------------------------------ Firestore
  # Composite indexes needed by the queries in the Go code (the emulator does
  # not enforce them; production does). Add one entry per new query shape.
  firestore_indexes = {
    jobs_state_updated = {
      collection = "jobs"
      fields     = [["state", "ASCENDING"], ["updated_at", "DESCENDING"]] # jobs list --state
    }
    # The Reconciler's stuck-collection queries (ledger.StuckCandidates).
    # Its due query (next_check_at <= now order by next_check_at) is a
    # range on one field: the single-field index in firestore.tf.
    jobs_stuck_pending = {
      collection = "jobs"
      fields     = [["collection_state", "ASCENDING"], ["updated_at", "ASCENDING"]]
    }
    jobs_stuck_failed = {
      collection = "jobs"
      fields     = [["collection_state", "ASCENDING"], ["collect_error.code", "ASCENDING"], ["updated_at", "ASCENDING"]]
    }
  }

  # ------------------------------------------------------------ source zip
  # Everything under source_dir except what the functions do not need. The
  # exclude list is kept in source-excludes.txt so scripts/buildpack-check.sh
  # builds from exactly the files the zip contains.
  source_dir = coalesce(var.source_dir, abspath("${path.module}/.."))
  source_excludes = [
    for l in split("\n", file("${path.module}/source-excludes.txt")) : trimspace(l)
    if trimspace(l) != "" && !startswith(trimspace(l), "#")
  ]
}
