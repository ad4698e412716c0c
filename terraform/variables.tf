# Inputs of the geminihooks deployment. Defaults that also exist in the Go
# code (topic names, ack deadlines, backoff, delivery attempts) mirror
# shared/topology so the local stack behaves like production; change both
# together.

variable "project_id" {
  description = "Google Cloud project that hosts everything (functions, Firestore, Pub/Sub, secrets)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 characters: lowercase letters, digits, hyphens; starts with a letter), not a project number or name."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket and the Artifact Registry repository."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Cloud region such as europe-west1 or us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (topics, subscriptions, functions, service accounts). Short because service account IDs are limited to 30 characters."
  type        = string
  default     = "geminihooks"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-12 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Labels added to every resource that supports them."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect stateful resources (Firestore database, secrets, source bucket) from `terraform destroy`. Turn off only for throwaway environments."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- Firestore

variable "firestore_location" {
  description = "Location of the Firestore database (a multi-region such as eur3/nam5 or a region). Cannot be changed after creation."
  type        = string
  default     = "eur3"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location ID such as eur3, nam5 or europe-west1."
  }
}

variable "firestore_database" {
  description = "Firestore database ID the functions use (FIRESTORE_DATABASE)."
  type        = string
  default     = "(default)"

  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be \"(default)\" or 4-63 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "create_firestore_database" {
  description = "Create the Firestore Native database. Set to false when the project already has it (indexes and the TTL policy are still managed here)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- secrets

variable "create_secrets" {
  description = "Create the Secret Manager secrets (containers only: Terraform never sees a secret value). Set to false to use secrets that already exist under the IDs below."
  type        = bool
  default     = true
}

variable "webhook_secret_id" {
  description = "Secret holding the Gemini webhook signing secret(s). The latest version is mounted into the Receiver; during a rotation it holds the new and the previous secret, comma separated (scripts/deploy.sh rotate). Defaults to <name_prefix>-webhook-secret."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", coalesce(var.webhook_secret_id, "x")))
    error_message = "webhook_secret_id must be a secret ID: 1-255 letters, digits, underscores or hyphens."
  }
}

variable "gemini_api_key_secret_id" {
  description = "Secret holding the Gemini API key, mounted into the Collector and the Workflow. Defaults to <name_prefix>-gemini-api-key."
  type        = string
  default     = null

  validation {
    condition     = var.gemini_api_key_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", coalesce(var.gemini_api_key_secret_id, "x")))
    error_message = "gemini_api_key_secret_id must be a secret ID: 1-255 letters, digits, underscores or hyphens."
  }
}

# ---------------------------------------------------------------- functions

variable "source_dir" {
  description = "Root of the Go module that is zipped and deployed (all four entry points come from it). Defaults to the repository root (the parent of this directory)."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Cloud Run functions runtime. Keep go.mod's `go` directive at or below it: the buildpack builds with this runtime's Go."
  type        = string
  default     = "go126"

  validation {
    condition     = can(regex("^go1[0-9]{2}$", var.runtime))
    error_message = "runtime must be a Go runtime ID such as go126."
  }
}

variable "min_instances" {
  description = "Minimum instances per function. 0 (scale to zero) by default: Pub/Sub retries absorb cold starts, and each warm instance is billed."
  type = object({
    receiver   = optional(number, 0)
    collector  = optional(number, 0)
    notifier   = optional(number, 0)
    workflow   = optional(number, 0)
    reconciler = optional(number, 0)
  })
  default = {}

  validation {
    condition     = alltrue([for v in values(var.min_instances) : v >= 0 && v <= 100 && floor(v) == v])
    error_message = "min_instances values must be whole numbers between 0 and 100."
  }
}

variable "max_instances" {
  description = "Maximum instances per function: caps cost and the load on Firestore and the Gemini API."
  type = object({
    receiver   = optional(number, 20)
    collector  = optional(number, 10)
    notifier   = optional(number, 5)
    workflow   = optional(number, 5)
    reconciler = optional(number, 1) # one sweep at a time is plenty
  })
  default = {}

  validation {
    condition     = alltrue([for v in values(var.max_instances) : v >= 1 && v <= 1000 && floor(v) == v])
    error_message = "max_instances values must be whole numbers between 1 and 1000."
  }
}

variable "collect_time_budget" {
  description = <<-EOT
    Seconds one Collector invocation streams a batch output file before it
    checkpoints and hands the rest to the next invocation (a continuation
    message on the events topic): COLLECT_TIME_BUDGET. With the time to flush
    and checkpoint (60 s) it must stay below the Collector's 480 s handler
    deadline, hence at most 420 s; functions.tf also checks it against the
    Collector's timeout and its subscription's ack deadline.
  EOT
  type        = number
  default     = 300

  validation {
    condition     = var.collect_time_budget >= 10 && var.collect_time_budget <= 420 && floor(var.collect_time_budget) == var.collect_time_budget
    error_message = "collect_time_budget must be a whole number of seconds between 10 and 420 (the Collector's 480 s handler deadline less 60 s to flush and checkpoint)."
  }
}

variable "jwt_webhooks" {
  description = "Accept dynamic (per-job webhook_config.uris) deliveries, which Gemini signs with an RS256 JWT instead of the static webhook's HMAC (WEBHOOK_JWT_ENABLED on the Receiver). Off: such deliveries are answered 401. Gemini does not document the token's audience, so without jwt_audience any token Gemini issued, for anyone, verifies; the Receiver then trusts nothing in it beyond \"this job id changed\" and reads the state from the API."
  type        = bool
  default     = false
}

variable "jwt_audience" {
  description = "Required \"aud\" of dynamic-webhook JWTs (JWT_AUDIENCE on the Receiver), e.g. the Receiver URL the jobs name in webhook_config.uris. null: aud is not checked. Only used with jwt_webhooks."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_audience == null || can(regex("^[^\\s]{1,512}$", coalesce(var.jwt_audience, "x")))
    error_message = "jwt_audience must be 1-512 characters without whitespace (or null for no audience check)."
  }
}

variable "video_bucket" {
  description = "Existing GCS bucket the Collector copies generated videos into (VIDEO_BUCKET). null: videos are not copied and the Collector gets no storage role."
  type        = string
  default     = null

  validation {
    condition     = var.video_bucket == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", coalesce(var.video_bucket, "xxx")))
    error_message = "video_bucket must be a bucket name (3-63 lowercase letters, digits, dots, underscores, hyphens), without gs://."
  }
}

variable "notifier" {
  description = <<-EOT
    Notifier settings. The Notifier forwards results events to the URL(s)
    held in a secret, so it is off unless you have somewhere to send them.
    enabled: deploy the Notifier function, its subscription and its
      destination secret (<name_prefix>-notifier-destination), mounted as
      NOTIFIER_DESTINATION_FILE. The secret needs a version before the
      function can start: scripts/deploy.sh adds $NOTIFIER_DESTINATION as the
      first version; without the script, add it yourself before the full apply.
    destination_secret_id: that secret's ID.
    destination_enabled: deprecated and ignored when true (an enabled
      Notifier always has its destination); false with enabled = true is
      rejected because that Notifier could never deliver anything.
  EOT
  type = object({
    enabled               = optional(bool, false)
    destination_enabled   = optional(bool)
    destination_secret_id = optional(string)
  })
  default = {}

  validation {
    condition     = var.notifier.destination_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", coalesce(var.notifier.destination_secret_id, "x")))
    error_message = "notifier.destination_secret_id must be a secret ID: 1-255 letters, digits, underscores or hyphens."
  }
  validation {
    condition     = var.notifier.enabled || var.notifier.destination_enabled != true
    error_message = "notifier.destination_enabled needs notifier.enabled."
  }
  validation {
    condition     = !var.notifier.enabled || var.notifier.destination_enabled != false
    error_message = "An enabled Notifier needs its destination secret (every results event would fail and dead-letter without it): drop notifier.destination_enabled = false."
  }
}

variable "workflow_enabled" {
  description = "Deploy the Workflow function and its subscription on the results topic."
  type        = bool
  default     = true
}

variable "reconciler" {
  description = <<-EOT
    The Reconciler: a Cloud Scheduler job calls it every `schedule` (cron, in
    `time_zone`) and it reads from Gemini's API the jobs whose webhook has
    not arrived when their check is due, announcing what it finds like a
    webhook (README "Completeness").
    first_check: delay of a job's first check after submission (then
      doubling, capped at 4 h). stuck_after: idle time after which a pending
      or retries-exhausted collection is driven again. lookback: how far
      back Gemini's batches are listed to find unknown ones (list_batches).
    reenable_webhooks: re-enable a Gemini webhook found
      disabled_due_to_failed_deliveries (always alerted).
  EOT
  type = object({
    enabled           = optional(bool, true)
    schedule          = optional(string, "*/5 * * * *")
    time_zone         = optional(string, "Etc/UTC")
    first_check       = optional(string, "5m")
    stuck_after       = optional(string, "15m")
    lookback          = optional(string, "72h")
    limit             = optional(number, 200)
    list_batches      = optional(bool, true)
    reenable_webhooks = optional(bool, false)
  })
  default = {}

  validation {
    condition = alltrue([for d in [var.reconciler.first_check, var.reconciler.stuck_after, var.reconciler.lookback] :
    can(regex("^[0-9]+(s|m|h)$", d))])
    error_message = "reconciler.first_check, stuck_after and lookback must be durations such as 90s, 5m or 72h."
  }
  validation {
    condition     = var.reconciler.limit >= 1 && var.reconciler.limit <= 1000 && floor(var.reconciler.limit) == var.reconciler.limit
    error_message = "reconciler.limit must be a whole number between 1 and 1000."
  }
  validation {
    condition     = length(split(" ", trimspace(var.reconciler.schedule))) == 5
    error_message = "reconciler.schedule must be a five-field cron expression such as \"*/5 * * * *\"."
  }
}

# ---------------------------------------------------------------- Pub/Sub

variable "retry_policy" {
  description = "Exponential backoff of every push subscription between redeliveries (Pub/Sub allows 0s-600s)."
  type = object({
    minimum_backoff = optional(string, "10s")
    maximum_backoff = optional(string, "600s")
  })
  default = {}

  validation {
    condition = alltrue([
      for d in [var.retry_policy.minimum_backoff, var.retry_policy.maximum_backoff] :
      can(regex("^[0-9]+(\\.[0-9]+)?s$", d)) && tonumber(trimsuffix(d, "s")) <= 600
    ]) && tonumber(trimsuffix(var.retry_policy.minimum_backoff, "s")) <= tonumber(trimsuffix(var.retry_policy.maximum_backoff, "s"))
    error_message = "retry_policy backoffs must be durations like \"10s\", at most \"600s\", with minimum_backoff <= maximum_backoff."
  }
}

variable "push_subscriptions" {
  description = <<-EOT
    Settings of the push subscriptions that feed our own functions. The ack
    deadline is also the push request timeout, so it must cover the function's
    run time (Collector: up to 540 s). filter is a Pub/Sub filter expression
    ("" delivers every message; e.g. "attributes:workflow_run").
  EOT
  type = object({
    collector = optional(object({
      ack_deadline_seconds  = optional(number, 600)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "")
    }), {})
    notifier = optional(object({
      ack_deadline_seconds  = optional(number, 60)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "")
    }), {})
    workflow = optional(object({
      ack_deadline_seconds  = optional(number, 120)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "attributes:label_workflow_run OR attributes:label_pipeline")
    }), {})
  })
  default = {}

  validation {
    condition = alltrue([
      for s in values(var.push_subscriptions) :
      s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600 &&
      s.max_delivery_attempts >= 5 && s.max_delivery_attempts <= 100 &&
      length(s.filter) <= 256
    ])
    error_message = "push_subscriptions: ack_deadline_seconds must be 10-600, max_delivery_attempts 5-100, filter at most 256 bytes."
  }
}

variable "subscribers" {
  description = <<-EOT
    Your own push endpoints on the results topic, by name. Each gets a push
    subscription with the shared retry policy, the results dead-letter topic and
    an OIDC token signed for a dedicated service account (created unless
    oidc_service_account_email is given; the audience defaults to the endpoint).
    Verify that token in the endpoint.
  EOT
  type = map(object({
    push_endpoint              = string
    filter                     = optional(string, "")
    ack_deadline_seconds       = optional(number, 60)
    max_delivery_attempts      = optional(number, 5)
    oidc_service_account_email = optional(string)
    oidc_audience              = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.subscribers) : can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", name))])
    error_message = "subscribers keys must be 2-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
  validation {
    condition     = alltrue([for s in values(var.subscribers) : startswith(s.push_endpoint, "https://")])
    error_message = "subscribers push_endpoint must be an https:// URL (Pub/Sub only sends OIDC tokens over HTTPS)."
  }
  validation {
    condition = alltrue([
      for s in values(var.subscribers) :
      s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600 &&
      s.max_delivery_attempts >= 5 && s.max_delivery_attempts <= 100 &&
      length(s.filter) <= 256
    ])
    error_message = "subscribers: ack_deadline_seconds must be 10-600, max_delivery_attempts 5-100, filter at most 256 bytes."
  }
  validation {
    condition = alltrue([
      for s in values(var.subscribers) :
      s.oidc_service_account_email == null || can(regex("^[^@]+@[^@]+\\.iam\\.gserviceaccount\\.com$", coalesce(s.oidc_service_account_email, "x")))
    ])
    error_message = "subscribers oidc_service_account_email must be a service account email (…@….iam.gserviceaccount.com)."
  }
}

# ---------------------------------------------------------------- monitoring

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) that receive every alert."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels entries must look like projects/PROJECT/notificationChannels/ID."
  }
}

variable "alerts" {
  description = "Alert thresholds: the Receiver's 5xx share of requests (0-1) and the Collector's ERROR log lines, each over a 5-minute window."
  type = object({
    enabled               = optional(bool, true)
    receiver_5xx_ratio    = optional(number, 0.05)
    collector_error_count = optional(number, 0)
  })
  default = {}

  validation {
    condition     = var.alerts.receiver_5xx_ratio > 0 && var.alerts.receiver_5xx_ratio <= 1 && var.alerts.collector_error_count >= 0
    error_message = "alerts.receiver_5xx_ratio must be in (0, 1] and alerts.collector_error_count >= 0."
  }
}

variable "dashboard_enabled" {
  description = "Create the Cloud Monitoring dashboard <name_prefix> (deliveries, events and results, collection, errors, dead letters)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- tracing

variable "tracing" {
  description = <<-EOT
    OpenTelemetry traces, exported to Cloud Trace: one trace follows a
    webhook through the Receiver, the events topic, the Collector, the
    results topic and the Notifier/Workflow (trace context travels in the
    messages' googclient_traceparent attribute), and every log line carries
    its trace id.
    enabled: export spans to Cloud Trace over OTLP (TRACE_EXPORTER=cloudtrace,
      telemetry.googleapis.com) and grant each function
      roles/telemetry.tracesWriter. Off: no export and no grant; log
      lines still carry the request's trace id.
    sample_ratio: share of traces exported (TRACE_SAMPLE_RATIO, 0-1). The
      decision is made from the trace id, so a trace is kept or dropped whole
      along the pipeline; a request Cloud Run already sampled is kept.
  EOT
  type = object({
    enabled      = optional(bool, true)
    sample_ratio = optional(number, 1)
  })
  default = {}

  validation {
    condition     = var.tracing.sample_ratio >= 0 && var.tracing.sample_ratio <= 1
    error_message = "tracing.sample_ratio must be between 0 and 1."
  }
}

# ---------------------------------------------------------------- source

variable "source_retention_days" {
  description = "Days a source zip stays in the source bucket. Every code change uploads a new zip; older ones are only needed to rebuild an old revision. The current zip is re-uploaded by the next apply if it has aged out."
  type        = number
  default     = 30

  validation {
    condition     = var.source_retention_days >= 1 && floor(var.source_retention_days) == var.source_retention_days
    error_message = "source_retention_days must be a whole number of days, at least 1."
  }
}
