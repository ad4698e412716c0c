# Secret containers only. Terraform never writes or reads a secret value, so
# none ends up in the state:
#   webhook secret: written by `geminihooks webhooks create --secret-manager …`
#     (scripts/deploy.sh); during a rotation the latest version holds
#     "new,previous" so the Receiver accepts both for Gemini's 24 h overlap;
#   Gemini API key: `gcloud secrets versions add … --data-file=-` (deploy.sh
#     does it from $GEMINI_API_KEY when the secret has no version yet);
#   notifier destination: the URL the Notifier forwards to, added by you.
# The functions mount `latest` as a file, so a new version is picked up
# without a redeploy.
locals {
  managed_secret_ids = toset(var.create_secrets ? concat(
    [local.webhook_secret_id, local.api_key_secret_id],
    local.notifier_dest_enabled ? [local.notifier_secret_id] : [],
  ) : [])
}

resource "google_secret_manager_secret" "this" {
  for_each = local.managed_secret_ids

  project             = var.project_id
  secret_id           = each.key
  labels              = local.labels
  deletion_protection = var.deletion_protection

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

locals {
  # Secret IDs the functions mount, resolved through the resources when we
  # manage them so that grants and mounts wait for the secrets to exist.
  secret_ref = {
    for id in distinct(flatten([for k, ms in local.secret_mounts : [for m in ms : m.secret]])) :
    id => contains(local.managed_secret_ids, id) ? google_secret_manager_secret.this[id].secret_id : id
  }
}
