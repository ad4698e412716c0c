# The Collector's time budget (COLLECT_TIME_BUDGET), its timeout and its
# subscription's ack deadline stay consistent: budget + 60 s (flush and
# checkpoint) within the 480 s handler deadline, which is 60 s below the
# timeout, which is below the ack deadline.

mock_provider "google" {}
mock_provider "archive" {}

variables {
  project_id = "test-project"
}

run "budget_default_reaches_the_collector" {
  command = plan

  assert {
    condition     = google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["COLLECT_TIME_BUDGET"] == "300s"
    error_message = "the Collector must get COLLECT_TIME_BUDGET=300s by default"
  }
  assert {
    condition     = google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["EVENTS_TOPIC"] == "geminihooks-events"
    error_message = "the Collector publishes continuations on the events topic"
  }
  assert {
    condition = (var.collect_time_budget + 120 <= google_cloudfunctions2_function.this["collector"].service_config[0].timeout_seconds &&
    google_cloudfunctions2_function.this["collector"].service_config[0].timeout_seconds < google_pubsub_subscription.push["collector"].ack_deadline_seconds)
    error_message = "budget + 120 s <= Collector timeout < events subscription ack deadline"
  }
}

run "budget_at_the_limit" {
  command = plan
  variables {
    collect_time_budget = 420
  }
  assert {
    condition     = google_cloudfunctions2_function.this["collector"].service_config[0].environment_variables["COLLECT_TIME_BUDGET"] == "420s"
    error_message = "a 420 s budget is allowed"
  }
}

run "rejects_budget_beyond_the_deadline" {
  command = plan
  variables {
    collect_time_budget = 421
  }
  expect_failures = [var.collect_time_budget]
}

run "rejects_fractional_budget" {
  command = plan
  variables {
    collect_time_budget = 30.5
  }
  expect_failures = [var.collect_time_budget]
}
