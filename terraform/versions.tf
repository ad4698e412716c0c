terraform {
  # 1.7: override_data/override_resource in tests; optional() defaults need 1.3.
  required_version = ">= 1.7"

  # Remote state in a GCS bucket, configured at init time (partial
  # configuration): scripts/deploy.sh passes -backend-config=bucket=… and
  # prefix=…; by hand:
  #   terraform init -backend-config=bucket=BUCKET -backend-config=prefix=geminihooks
  # The gcs backend locks the state with a lock object next to it while a
  # plan or apply runs (see README.md, "State"). For a throwaway local run,
  # put `terraform { backend "local" {} }` in backend_override.tf (ignored by git).
  backend "gcs" {}

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.0 is the first major release that has every argument used here
      # (deletion_protection on google_secret_manager_secret only arrived in
      # mid-2025, late in 6.x); checked offline against the 7.45.0 schema
      # (scripts/tf-check.sh).
      version = ">= 7.0, < 8.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.4.0 added glob patterns in archive_file.excludes.
      version = ">= 2.4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
