terraform {
  # 1.7: override_data/override_resource in tests; optional() defaults need 1.3.
  required_version = ">= 1.7"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Checked offline against the 7.45.0 schema (see scripts/tf-check.sh).
      version = ">= 6.0, < 8.0"
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
