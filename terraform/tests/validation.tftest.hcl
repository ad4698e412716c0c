# Input validation rejects bad values at plan time.

mock_provider "google" {}
mock_provider "archive" {}

variables {
  project_id = "test-project"
}

run "rejects_bad_project_id" {
  command = plan
  variables {
    project_id = "123456789012"
  }
  expect_failures = [var.project_id]
}

run "rejects_bad_name_prefix" {
  command = plan
  variables {
    name_prefix = "Gemini_Hooks"
  }
  expect_failures = [var.name_prefix]
}

run "rejects_long_name_prefix" {
  command = plan
  variables {
    name_prefix = "geminihooks-prod"
  }
  expect_failures = [var.name_prefix]
}

run "rejects_too_few_delivery_attempts" {
  command = plan
  variables {
    push_subscriptions = { collector = { max_delivery_attempts = 4 } }
  }
  expect_failures = [var.push_subscriptions]
}

run "rejects_too_many_delivery_attempts" {
  command = plan
  variables {
    subscribers = { audit = { push_endpoint = "https://audit.example.com/push", max_delivery_attempts = 101 } }
  }
  expect_failures = [var.subscribers]
}

run "rejects_ack_deadline_over_600" {
  command = plan
  variables {
    push_subscriptions = { collector = { ack_deadline_seconds = 601 } }
  }
  expect_failures = [var.push_subscriptions]
}

run "rejects_plain_http_subscriber" {
  command = plan
  variables {
    subscribers = { audit = { push_endpoint = "http://audit.example.com/push" } }
  }
  expect_failures = [var.subscribers]
}

run "rejects_bad_subscriber_name" {
  command = plan
  variables {
    subscribers = { "Audit_Team" = { push_endpoint = "https://audit.example.com/push" } }
  }
  expect_failures = [var.subscribers]
}

run "rejects_inverted_backoff" {
  command = plan
  variables {
    retry_policy = { minimum_backoff = "600s", maximum_backoff = "10s" }
  }
  expect_failures = [var.retry_policy]
}

run "rejects_backoff_over_600s" {
  command = plan
  variables {
    retry_policy = { maximum_backoff = "900s" }
  }
  expect_failures = [var.retry_policy]
}

run "rejects_zero_max_instances" {
  command = plan
  variables {
    max_instances = { collector = 0 }
  }
  expect_failures = [var.max_instances]
}

run "rejects_bad_notification_channel" {
  command = plan
  variables {
    notification_channels = ["my-email-channel"]
  }
  expect_failures = [var.notification_channels]
}

run "rejects_destination_without_notifier" {
  command = plan
  variables {
    notifier = { enabled = false, destination_enabled = true }
  }
  expect_failures = [var.notifier]
}

run "rejects_notifier_without_destination" {
  command = plan
  variables {
    notifier = { enabled = true, destination_enabled = false }
  }
  expect_failures = [var.notifier]
}

run "rejects_sample_ratio_above_one" {
  command = plan
  variables {
    tracing = { sample_ratio = 1.5 }
  }
  expect_failures = [var.tracing]
}

run "rejects_gs_prefixed_video_bucket" {
  command = plan
  variables {
    video_bucket = "gs://videos"
  }
  expect_failures = [var.video_bucket]
}

run "accepts_valid_inputs" {
  command = plan
  variables {
    name_prefix  = "gh-prod"
    region       = "us-central1"
    video_bucket = "my-videos"
    subscribers = {
      audit = { push_endpoint = "https://audit.example.com/push", max_delivery_attempts = 100, ack_deadline_seconds = 600 }
    }
    notification_channels = ["projects/test-project/notificationChannels/123"]
    retry_policy          = { minimum_backoff = "0s", maximum_backoff = "600s" }
  }

  assert {
    condition     = google_pubsub_subscription.push["sub-audit"].name == "gh-prod-sub-audit"
    error_message = "valid inputs must plan"
  }
}

run "rejects_blank_jwt_audience" {
  command = plan
  variables {
    jwt_webhooks = true
    jwt_audience = "https://hooks.example.com/ gemini"
  }
  expect_failures = [var.jwt_audience]
}
