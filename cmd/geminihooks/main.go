// Command geminihooks is the geminihooks command-line tool: run the local
// stack, send signed test webhooks, submit Gemini jobs, inspect the job
// ledger, manage Gemini webhook registrations and replay recorded events.
//
// Run "geminihooks help" or "geminihooks COMMAND --help" for usage.
//
// Exit status: 0 on success, 1 when a command failed at run time, 2 on a
// usage error (unknown command or flag, missing or invalid argument).
// Errors are printed as
//
//	geminihooks: <what failed>: <why> (retry may help | fix the input)
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
