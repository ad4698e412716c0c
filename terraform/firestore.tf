# Firestore Native database holding the job ledger:
#   deliveries/{webhook_id}   de-duplication markers, deleted by TTL (expire_at)
#   jobs/{job_id}             job state; subcollection results
#   notifications/{event_id}  Notifier idempotency
#   workflow_runs/{run_id}    Workflow runs
resource "google_firestore_database" "this" {
  count = var.create_firestore_database ? 1 : 0

  project     = var.project_id
  name        = var.firestore_database
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"
  # Optimistic concurrency suits short transactions on per-job documents.
  concurrency_mode = "OPTIMISTIC"

  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

locals {
  # The database name everything else refers to, through the resource when we
  # create it so indexes and the TTL policy wait for the database.
  firestore_database = var.create_firestore_database ? google_firestore_database.this[0].name : var.firestore_database
}

# TTL policy: Firestore deletes a delivery marker some time after expire_at
# (DELIVERY_TTL, default 7 days after receipt; deletion typically within 24 h).
resource "google_firestore_field" "deliveries_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "deliveries"
  field      = "expire_at"

  ttl_config {}

  # No single-field indexes on expire_at: nothing queries it, and indexing a
  # monotonically increasing timestamp creates write hotspots.
  index_config {}
}

# Composite indexes for the queries in the Go code (local.firestore_indexes).
resource "google_firestore_index" "this" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = local.firestore_database
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# The Reconciler's due query, jobs where next_check_at <= now order by
# next_check_at (ledger.DueJobs): an ascending single-field index, declared
# so an index exemption elsewhere cannot turn the sweep into a collection
# scan. Terminal jobs have no next_check_at, so the index holds only jobs
# still running: a sweep reads what is due, not what is stored.
resource "google_firestore_field" "jobs_next_check_at" {
  count = var.reconciler.enabled ? 1 : 0

  project    = var.project_id
  database   = local.firestore_database
  collection = "jobs"
  field      = "next_check_at"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }
}
