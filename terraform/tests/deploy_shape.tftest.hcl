# The two variable sets scripts/deploy-shape.sh deploys for real (each
# function started the buildpack way with exactly the environment and secret
# files planned here, against emulators, and sent a request). It reads the
# planned google_cloudfunctions2_function resources of these runs from
# `terraform test -json -verbose`, so the run names are part of its interface.
# The assertions hold for any variables: every *_FILE variable names a file
# inside one of the function's secret volumes.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

mock_provider "archive" {}

run "defaults" {
  command = plan

  variables {
    project_id = "shape-defaults"
  }

  assert {
    condition = alltrue(flatten([
      for f in google_cloudfunctions2_function.this : [
        for k, v in f.service_config[0].environment_variables :
        contains([for sv in f.service_config[0].secret_volumes : "${sv.mount_path}/${sv.versions[0].path}"], v)
        if endswith(k, "_FILE")
      ]
    ]))
    error_message = "every *_FILE variable must point at a file of a mounted secret volume"
  }
}

run "everything_on" {
  command = plan

  variables {
    project_id   = "shape-everything"
    name_prefix  = "gh-shape"
    video_bucket = "shape-videos"
    notifier     = { enabled = true }
    tracing      = { enabled = true, sample_ratio = 0.5 }
    subscribers = {
      audit = { push_endpoint = "https://audit.example.com/push" }
    }
    min_instances = { receiver = 1 }
    jwt_webhooks  = true
    jwt_audience  = "https://europe-west1-shape-everything.cloudfunctions.net/gh-shape-receiver"
  }

  assert {
    condition = alltrue(flatten([
      for f in google_cloudfunctions2_function.this : [
        for k, v in f.service_config[0].environment_variables :
        contains([for sv in f.service_config[0].secret_volumes : "${sv.mount_path}/${sv.versions[0].path}"], v)
        if endswith(k, "_FILE")
      ]
    ]))
    error_message = "every *_FILE variable must point at a file of a mounted secret volume"
  }
  assert {
    condition     = toset(keys(google_cloudfunctions2_function.this)) == toset(["receiver", "collector", "notifier", "workflow", "reconciler"])
    error_message = "everything_on must deploy every function"
  }
}
