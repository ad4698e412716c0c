package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

func TestDefaultNames(t *testing.T) {
	for _, prefix := range []string{"", "geminihooks", "gh-dev"} {
		top := Default(prefix)
		p := prefix
		if p == "" {
			p = "geminihooks"
		}
		if top.Prefix != p || top.EventsTopic() != p+"-events" || top.ResultsTopic() != p+"-results" {
			t.Errorf("Default(%q): prefix %q events %q results %q", prefix, top.Prefix, top.EventsTopic(), top.ResultsTopic())
		}
		wantTopics := []Topic{{p + "-events", false}, {p + "-results", false}, {p + "-events-dlq", true}, {p + "-results-dlq", true}}
		if len(top.Topics) != len(wantTopics) {
			t.Fatalf("Default(%q).Topics = %v", prefix, top.Topics)
		}
		for i, w := range wantTopics {
			if top.Topics[i] != w {
				t.Errorf("Default(%q).Topics[%d] = %+v, want %+v", prefix, i, top.Topics[i], w)
			}
		}
		want := []Subscription{
			{Name: p + "-collector", Topic: p + "-events", Function: "Collector", AckDeadline: 600 * time.Second,
				MinBackoff: 10 * time.Second, MaxBackoff: 600 * time.Second, MaxDeliveryAttempts: 5, DeadLetterTopic: p + "-events-dlq"},
			{Name: p + "-notifier", Topic: p + "-results", Function: "Notifier", AckDeadline: 60 * time.Second,
				MinBackoff: 10 * time.Second, MaxBackoff: 600 * time.Second, MaxDeliveryAttempts: 5, DeadLetterTopic: p + "-results-dlq"},
			{Name: p + "-workflow", Topic: p + "-results", Function: "Workflow", AckDeadline: 120 * time.Second,
				Filter:     "attributes:label_workflow_run OR attributes:label_pipeline",
				MinBackoff: 10 * time.Second, MaxBackoff: 600 * time.Second, MaxDeliveryAttempts: 5, DeadLetterTopic: p + "-results-dlq"},
		}
		if len(top.Subscriptions) != len(want) {
			t.Fatalf("Default(%q).Subscriptions = %v", prefix, top.Subscriptions)
		}
		for i, w := range want {
			if top.Subscriptions[i] != w {
				t.Errorf("Default(%q).Subscriptions[%d] =\n %+v, want\n %+v", prefix, i, top.Subscriptions[i], w)
			}
			got, ok := top.Subscription(w.Function)
			if !ok || got != w {
				t.Errorf("Subscription(%q) = %+v, %v", w.Function, got, ok)
			}
		}
		if err := top.Validate(); err != nil {
			t.Errorf("Default(%q).Validate: %v", prefix, err)
		}
	}
	if _, ok := Default("").Subscription("Receiver"); ok {
		t.Error("Subscription(Receiver) found; the Receiver is not push-triggered")
	}
}

func TestValidateRejects(t *testing.T) {
	mutate := map[string]func(*Topology){
		"unknown topic":      func(t *Topology) { t.Subscriptions[0].Topic = "nope" },
		"unknown dlq":        func(t *Topology) { t.Subscriptions[0].DeadLetterTopic = "nope" },
		"duplicate sub":      func(t *Topology) { t.Subscriptions[1].Name = t.Subscriptions[0].Name },
		"duplicate topic":    func(t *Topology) { t.Topics[1].Name = t.Topics[0].Name },
		"ack too short":      func(t *Topology) { t.Subscriptions[0].AckDeadline = time.Second },
		"ack too long":       func(t *Topology) { t.Subscriptions[0].AckDeadline = 601 * time.Second },
		"attempts too low":   func(t *Topology) { t.Subscriptions[0].MaxDeliveryAttempts = 4 },
		"attempts too high":  func(t *Topology) { t.Subscriptions[0].MaxDeliveryAttempts = 101 },
		"backoff min > max":  func(t *Topology) { t.Subscriptions[0].MinBackoff = 700 * time.Second },
		"backoff max > 600s": func(t *Topology) { t.Subscriptions[0].MaxBackoff = 601 * time.Second },
		"empty topic name":   func(t *Topology) { t.Topics[0].Name = "" },
		"empty subscription": func(t *Topology) { t.Subscriptions[2].Name = "" },
	}
	for name, m := range mutate {
		top := Default("")
		top.Topics = append([]Topic(nil), top.Topics...)
		top.Subscriptions = append([]Subscription(nil), top.Subscriptions...)
		m(&top)
		if err := top.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, top)
		}
	}
}

// The Terraform module keeps these settings in variable defaults, some of
// them as optional() attribute defaults inside object types:
//
//	name_prefix                                          "geminihooks"
//	retry_policy.{minimum,maximum}_backoff               "10s", "600s"
//	push_subscriptions.<sub>.ack_deadline_seconds        600 / 60 / 120
//	push_subscriptions.<sub>.max_delivery_attempts       5
//	push_subscriptions.<sub>.filter                      ""
//
// where <sub> is the subscription name without "<prefix>-" (collector,
// notifier, workflow), and the topic names in local.topics of locals.tf.
const (
	variablesTF = "../../terraform/variables.tf"
	localsTF    = "../../terraform/locals.tf"
)

// TestTerraformDefaultsMirrorTopology keeps terraform/variables.tf and this
// package from drifting: the deployed subscriptions and the local stack must
// behave alike.
func TestTerraformDefaultsMirrorTopology(t *testing.T) {
	src := readOrSkip(t, variablesTF)
	problems, err := terraformMismatches(src, variablesTF, Default(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestTerraformTopicNamesMirrorTopology checks local.topics in locals.tf.
func TestTerraformTopicNamesMirrorTopology(t *testing.T) {
	src := readOrSkip(t, localsTF)
	top := Default("")
	got, err := terraformTopics(src, localsTF, top.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tp := range top.Topics {
		want = append(want, tp.Name)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: local.topics = %v, want %v (shared/topology)", localsTF, got, want)
	}
}

func readOrSkip(t *testing.T, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const goodVariables = `
variable "name_prefix" {
  type    = string
  default = "geminihooks"
}
variable "retry_policy" {
  type = object({
    minimum_backoff = optional(string, "10s")
    maximum_backoff = optional(string, "600s")
  })
  default = {}
}
variable "push_subscriptions" {
  type = object({
    collector = optional(object({
      ack_deadline_seconds  = optional(number, 600)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "")
    }), {})
    notifier = optional(object({
      ack_deadline_seconds  = optional(number, 60)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "")
    }), {})
    workflow = optional(object({
      ack_deadline_seconds  = optional(number, 120)
      max_delivery_attempts = optional(number, 5)
      filter                = optional(string, "attributes:label_workflow_run OR attributes:label_pipeline")
    }), {})
  })
  default = {}
}
variable "no_default" { type = string }
`

func TestTerraformMismatches(t *testing.T) {
	top := Default("")
	if problems, err := terraformMismatches([]byte(goodVariables), "good.tf", top); err != nil || len(problems) != 0 {
		t.Errorf("good file: %v, %v", problems, err)
	}
	edits := map[string]struct{ old, new, report string }{
		"prefix":        {`default = "geminihooks"`, `default = "gh"`, "name_prefix"},
		"backoff":       {`"600s"`, `"300s"`, "retry_policy.maximum_backoff"},
		"ack deadline":  {`optional(number, 600)`, `optional(number, 540)`, "push_subscriptions.collector.ack_deadline_seconds"},
		"attempts":      {`max_delivery_attempts = optional(number, 5)` + "\n      filter                = optional(string, \"\")\n    }), {})\n    workflow", `max_delivery_attempts = optional(number, 7)` + "\n      filter                = optional(string, \"\")\n    }), {})\n    workflow", "push_subscriptions.notifier.max_delivery_attempts"},
		"missing block": {`    workflow = optional(`, `    workflox = optional(`, "push_subscriptions.workflow"},
		"filter":        {`optional(string, "attributes:label_workflow_run OR attributes:label_pipeline")`, `optional(string, "attributes:x")`, "push_subscriptions.workflow.filter"},
	}
	for name, e := range edits {
		src := strings.Replace(goodVariables, e.old, e.new, 1)
		if src == goodVariables {
			t.Fatalf("%s: edit did not apply", name)
		}
		problems, err := terraformMismatches([]byte(src), "bad.tf", top)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(problems) != 1 || !strings.Contains(problems[0], e.report) {
			t.Errorf("%s: problems = %q, want one about %s", name, problems, e.report)
		}
	}
	if _, err := terraformMismatches([]byte(`variable "x" {`), "broken.tf", top); err == nil {
		t.Error("broken HCL accepted")
	}
}

func TestTerraformTopics(t *testing.T) {
	src := []byte(`
locals {
  p = var.name_prefix
  topics = {
    events      = "${local.p}-events"
    results     = "${local.p}-results"
    events_dlq  = "${local.p}-events-dlq"
    results_dlq = "${local.p}-results-dlq"
  }
}`)
	got, err := terraformTopics(src, "l.tf", "pfx")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pfx-events", "pfx-events-dlq", "pfx-results", "pfx-results-dlq"}; !slices.Equal(got, want) {
		t.Errorf("topics = %v, want %v", got, want)
	}
	if _, err := terraformTopics([]byte(`locals { x = 1 }`), "l.tf", "p"); err == nil {
		t.Error("missing local.topics not reported")
	}
}

// terraformMismatches lists every setting of top whose default in the
// Terraform variables file src is missing or different.
func terraformMismatches(src []byte, path string, top Topology) ([]string, error) {
	defaults, err := variableDefaults(src, path)
	if err != nil {
		return nil, err
	}
	var problems []string
	check := func(name string, got cty.Value, want cty.Value) {
		if !equalValue(got, want) {
			problems = append(problems, fmt.Sprintf("%s: default of %s = %s, want %s (shared/topology)", path, name, got.GoString(), want.GoString()))
		}
	}
	// get follows a dotted path; a missing step is reported once.
	get := func(name string) (cty.Value, bool) {
		parts := strings.Split(name, ".")
		v, ok := defaults[parts[0]]
		for i := 1; ok && i < len(parts); i++ {
			if v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute(parts[i]) {
				ok = false
				break
			}
			v = v.GetAttr(parts[i])
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no default for %s", path, name))
		}
		return v, ok
	}
	if v, ok := get("name_prefix"); ok {
		check("name_prefix", v, cty.StringVal(top.Prefix))
	}
	for _, s := range top.Subscriptions {
		key := "push_subscriptions." + strings.TrimPrefix(s.Name, top.Prefix+"-")
		if _, ok := get(key); !ok {
			continue
		}
		if v, ok := get(key + ".ack_deadline_seconds"); ok {
			check(key+".ack_deadline_seconds", v, cty.NumberIntVal(int64(s.AckDeadline/time.Second)))
		}
		if v, ok := get(key + ".max_delivery_attempts"); ok {
			check(key+".max_delivery_attempts", v, cty.NumberIntVal(int64(s.MaxDeliveryAttempts)))
		}
		if v, ok := get(key + ".filter"); ok {
			check(key+".filter", v, cty.StringVal(s.Filter))
		}
	}
	// One retry policy for all subscriptions in Terraform.
	for _, s := range top.Subscriptions {
		for name, want := range map[string]time.Duration{"retry_policy.minimum_backoff": s.MinBackoff, "retry_policy.maximum_backoff": s.MaxBackoff} {
			v, ok := get(name)
			if !ok {
				continue
			}
			if v.Type() != cty.String || v.IsNull() {
				check(name, v, cty.StringVal(want.String()))
				continue
			}
			if d, err := time.ParseDuration(v.AsString()); err != nil || d != want {
				problems = append(problems, fmt.Sprintf("%s: default of %s = %q, want %v for %s (shared/topology)", path, name, v.AsString(), want, s.Name))
			}
		}
		break
	}
	return problems, nil
}

// variableDefaults returns the effective default of every variable block
// that has one: the literal default with the type's optional() attribute
// defaults applied and converted to the type, as Terraform does.
func variableDefaults(src []byte, filename string) (map[string]cty.Value, error) {
	body, err := parseBody(src, filename)
	if err != nil {
		return nil, err
	}
	out := map[string]cty.Value{}
	for _, b := range body.Blocks {
		if b.Type != "variable" || len(b.Labels) != 1 {
			continue
		}
		attr, ok := b.Body.Attributes["default"]
		if !ok {
			continue
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("variable %s default: %w", b.Labels[0], diags)
		}
		if ta, ok := b.Body.Attributes["type"]; ok && !v.IsNull() {
			ty, defs, diags := typeexpr.TypeConstraintWithDefaults(ta.Expr)
			if diags.HasErrors() {
				return nil, fmt.Errorf("variable %s type: %w", b.Labels[0], diags)
			}
			if defs != nil {
				v = defs.Apply(v)
			}
			if v, err = convert.Convert(v, ty); err != nil {
				return nil, fmt.Errorf("variable %s default does not fit its type: %w", b.Labels[0], err)
			}
		}
		out[b.Labels[0]] = v
	}
	return out, nil
}

// terraformTopics evaluates local.topics with local.p = prefix and returns
// the sorted topic names.
func terraformTopics(src []byte, filename, prefix string) ([]string, error) {
	body, err := parseBody(src, filename)
	if err != nil {
		return nil, err
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"local": cty.ObjectVal(map[string]cty.Value{"p": cty.StringVal(prefix)}),
	}}
	for _, b := range body.Blocks {
		attr, ok := b.Body.Attributes["topics"]
		if b.Type != "locals" || !ok {
			continue
		}
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("local.topics: %w", diags)
		}
		if !v.CanIterateElements() {
			return nil, fmt.Errorf("local.topics is %s, not a map", v.Type().FriendlyName())
		}
		var names []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type() != cty.String || e.IsNull() {
				return nil, fmt.Errorf("local.topics has a non-string element %#v", e)
			}
			names = append(names, e.AsString())
		}
		slices.Sort(names)
		return names, nil
	}
	return nil, fmt.Errorf("%s: no local.topics", filename)
}

func parseBody(src []byte, filename string) (*hclsyntax.Body, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, errors.New(filename + ": not native HCL syntax")
	}
	return body, nil
}

func equalValue(got, want cty.Value) bool {
	if got.IsNull() || !got.IsKnown() || !got.Type().Equals(want.Type()) {
		return false
	}
	if want.Type() == cty.Number {
		return got.AsBigFloat().Cmp(want.AsBigFloat()) == 0
	}
	return got.Equals(want).True()
}
