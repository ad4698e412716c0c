// Package geminihooks is the root of the deployable source. The Cloud
// Functions Go buildpack generates a main package that imports the package at
// the root of the uploaded source and serves the function named by
// FUNCTION_TARGET; importing every function package here is what makes each
// entry point (Receiver, Collector, Notifier, Workflow, Reconciler) buildable from one upload.
//
// Each function package only registers itself in init(); configuration and
// clients are built lazily by the function actually served.
package geminihooks

import (
	_ "github.com/geminihooks/geminihooks/functions/collector"
	_ "github.com/geminihooks/geminihooks/functions/notifier"
	_ "github.com/geminihooks/geminihooks/functions/receiver"
	_ "github.com/geminihooks/geminihooks/functions/reconciler"
	_ "github.com/geminihooks/geminihooks/functions/workflow"
)
