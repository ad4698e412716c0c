package workflow

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/topology"

	"go.yaml.in/yaml/v3"
)

// Step kinds.
const (
	KindBatch       = "batch"
	KindInteraction = "interaction"
	KindVideo       = "video"
)

// DefaultMaxTurns bounds the tool turns of an interaction step whose
// definition sets no max_turns.
const DefaultMaxTurns = 4

// TriggerLabel is the job label every trigger must match on. The Workflow
// subscription's filter (see [SubscriptionFilter]) is static, so a results
// event reaches the function only if it is a workflow job's or carries this
// label.
const TriggerLabel = "pipeline"

// SubscriptionFilter is the Pub/Sub filter of the Workflow function's push
// subscription on the results topic.
const SubscriptionFilter = topology.WorkflowFilter

// ErrDefinition reports an unusable workflow definition; fix the file.
var ErrDefinition = errors.New("invalid workflow definition")

// Definition is a workflow: steps run one after the other, each a Gemini
// job built from the run's input and the earlier steps' results.
type Definition struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// On lists results events that start a run ("on:" may hold one
	// trigger or a list).
	On    Triggers `yaml:"on"`
	Steps []Step   `yaml:"steps"`

	// Source is the YAML the definition was parsed from; a run keeps it so
	// a redeploy never changes a running workflow.
	Source []byte `yaml:"-"`
}

// Trigger starts a run when a results event matches: its type matches
// EventType (path.Match syntax, e.g. "batch.*"), its job's state is one of
// States (default: succeeded), and it carries every label in Label, which
// must include [TriggerLabel]. Events of jobs that workflows submitted
// never trigger runs, so a workflow cannot start itself in a loop.
type Trigger struct {
	EventType string            `yaml:"event_type"`
	States    []string          `yaml:"states"`
	Label     map[string]string `yaml:"label"`
}

// Triggers accepts one trigger or a list in YAML.
type Triggers []Trigger

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Triggers) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var one Trigger
		if err := n.Decode(&one); err != nil {
			return err
		}
		*t = Triggers{one}
		return nil
	}
	var many []Trigger
	if err := n.Decode(&many); err != nil {
		return err
	}
	*t = many
	return nil
}

// Step is one Gemini job of a workflow. Text fields marked "template" are
// Go text/templates over [TemplateData].
type Step struct {
	// Name identifies the step ([a-z0-9_-]); templates refer to its
	// results as .Steps.<name> (use index .Steps "name" for names with "-").
	Name string `yaml:"name"`
	// Kind is batch, interaction or video.
	Kind  string `yaml:"kind"`
	Model string `yaml:"model"`
	// When (template) must render "true" for the step to run; anything
	// else skips it. Empty: always run. This is how a step reacts to an
	// earlier step's state (see AllowFailure).
	When string `yaml:"when"`
	// AllowFailure lets the run continue when this step's job fails; later
	// steps can test {{ .Steps.x.State }}. Default: a failed step fails
	// the run with the reason.
	AllowFailure bool `yaml:"allow_failure"`
	// Foreach (template, batch only) fans out: its output is a JSON array
	// or one item per non-empty line, and each item becomes one batch
	// request whose prompt is rendered with .Item and .Index set.
	Foreach string `yaml:"foreach"`
	// Prompt (template): the batch request(s), the video prompt, or the
	// interaction's input.
	Prompt string `yaml:"prompt"`
	// DisplayName (template, batch only).
	DisplayName string `yaml:"display_name"`
	// Tools (interaction only) are tool names from the registry; a
	// requires_action result runs them and continues the interaction.
	Tools []string `yaml:"tools"`
	// MaxTurns bounds the tool turns (default DefaultMaxTurns).
	MaxTurns int `yaml:"max_turns"`
	// NumberOfVideos (video only); 0 lets Gemini choose.
	NumberOfVideos int32 `yaml:"number_of_videos"`
}

func (s Step) maxTurns() int {
	if s.MaxTurns > 0 {
		return s.MaxTurns
	}
	return DefaultMaxTurns
}

var stepName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Parse reads and validates one YAML definition. knownTool, when not nil,
// reports whether a tool name is registered.
func Parse(src []byte, knownTool func(string) bool) (*Definition, error) {
	var d Definition
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: yaml: %v", ErrDefinition, err)
	}
	d.Source = append([]byte(nil), src...)
	if err := d.validate(knownTool); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDefinition, orUnnamed(d.Name), err)
	}
	return &d, nil
}

func orUnnamed(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

func (d *Definition) validate(knownTool func(string) bool) error {
	if !stepName.MatchString(d.Name) {
		return fmt.Errorf("name %q must match %s", d.Name, stepName)
	}
	if len(d.Steps) == 0 {
		return errors.New("no steps")
	}
	for i, t := range d.On {
		if t.EventType == "" {
			return fmt.Errorf("trigger %d: event_type is required", i)
		}
		if _, err := path.Match(t.EventType, ""); err != nil {
			return fmt.Errorf("trigger %d: event_type pattern %q: %v", i, t.EventType, err)
		}
		if t.Label[TriggerLabel] == "" {
			return fmt.Errorf("trigger %d: label.%s is required (the subscription filter only lets such events through)", i, TriggerLabel)
		}
		if err := event.ValidateLabels(t.Label); err != nil {
			return fmt.Errorf("trigger %d: %w (no job can carry such a label)", i, err)
		}
	}
	seen := map[string]bool{}
	for i, s := range d.Steps {
		where := fmt.Sprintf("step %d (%s)", i+1, s.Name)
		if !stepName.MatchString(s.Name) {
			return fmt.Errorf("%s: name must match %s", where, stepName)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s: duplicate step name", where)
		}
		seen[s.Name] = true
		if strings.TrimSpace(s.Model) == "" {
			return fmt.Errorf("%s: model is required", where)
		}
		if strings.TrimSpace(s.Prompt) == "" {
			return fmt.Errorf("%s: prompt is required", where)
		}
		switch s.Kind {
		case KindBatch:
		case KindInteraction:
		case KindVideo:
		default:
			return fmt.Errorf("%s: kind must be batch, interaction or video, not %q", where, s.Kind)
		}
		if s.Foreach != "" && s.Kind != KindBatch {
			return fmt.Errorf("%s: foreach is for batch steps", where)
		}
		if len(s.Tools) > 0 && s.Kind != KindInteraction {
			return fmt.Errorf("%s: tools are for interaction steps", where)
		}
		if s.MaxTurns < 0 {
			return fmt.Errorf("%s: max_turns must not be negative", where)
		}
		for _, tn := range s.Tools {
			if knownTool != nil && !knownTool(tn) {
				return fmt.Errorf("%s: tool %q is not registered", where, tn)
			}
		}
		for field, text := range map[string]string{"when": s.When, "foreach": s.Foreach, "prompt": s.Prompt, "display_name": s.DisplayName} {
			if _, err := parseTemplate(field, text); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		}
	}
	return nil
}

// StepIndex returns the position of the step called name, or -1.
func (d *Definition) StepIndex(name string) int {
	for i, s := range d.Steps {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// Catalog is a set of definitions by name.
type Catalog map[string]*Definition

// LoadFS parses every *.yaml and *.yml file at the root of fsys.
func LoadFS(fsys fs.FS, knownTool func(string) bool) (Catalog, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read workflow definitions: %w", err)
	}
	c := Catalog{}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
		d, err := Parse(b, knownTool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if _, dup := c[d.Name]; dup {
			return nil, fmt.Errorf("%w: %s: workflow %q defined twice", ErrDefinition, e.Name(), d.Name)
		}
		c[d.Name] = d
	}
	return c, nil
}

// Names lists the catalog's workflows, sorted.
func (c Catalog) Names() []string {
	out := make([]string, 0, len(c))
	for n := range c {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
