// Package workflows holds the workflow definitions deployed with the
// Workflow function: every *.yaml file in this directory is embedded in the
// binary, so a definition changes with a deploy (a running workflow keeps
// the definition it started with). The format is documented on
// shared/workflow.Definition and in README.md here.
package workflows

import "embed"

// FS holds the definitions (*.yaml at its root).
//
//go:embed *.yaml
var FS embed.FS
