// Package tools is the registry of Go functions a workflow's interactions
// may call. When an interaction ends in requires_action, the Workflow
// function looks each pending function call up here by name, decodes its
// JSON arguments into the tool's typed argument struct, runs it and sends
// the result back to Gemini as a function_result step.
//
// A tool is declared with [New] over a typed argument struct; the struct's
// fields (json tags, and an optional desc tag) give both the decoding and
// the JSON Schema declared to the model, so the two cannot drift apart.
//
// Tools must be idempotent and quick: a redelivered results event may run
// the same call again, and the whole tool turn runs inside one push
// delivery (the subscription's acknowledgement deadline).
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
)

var (
	// ErrUnknownTool: the model called a function no tool is registered
	// for. Retrying cannot help; the workflow step fails.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrBadArguments: the call's arguments do not decode into the tool's
	// argument struct. The error goes back to the model as the result.
	ErrBadArguments = errors.New("bad tool arguments")
)

// Tool is one callable function.
type Tool interface {
	Name() string
	Description() string
	// Parameters is the JSON Schema of the arguments object.
	Parameters() map[string]any
	// Call runs the tool on the raw JSON arguments object.
	Call(ctx context.Context, args []byte) (string, error)
}

type typed[A any] struct {
	name, desc string
	schema     map[string]any
	fn         func(context.Context, A) (string, error)
}

// New declares a tool whose arguments decode into A, a struct whose
// exported fields carry json tags (a field without ",omitempty" is
// required) and optionally desc:"…" for the schema. Field types may be
// strings, booleans, integers and floats. It panics on an unusable A,
// which is a programming error found by the first test.
func New[A any](name, description string, fn func(ctx context.Context, args A) (string, error)) Tool {
	var zero A
	schema, err := schemaOf(reflect.TypeOf(zero))
	if err != nil {
		panic(fmt.Sprintf("tools.New(%q): %v", name, err))
	}
	if !validName(name) {
		panic(fmt.Sprintf("tools.New(%q): name must be [a-zA-Z_][a-zA-Z0-9_]*", name))
	}
	return &typed[A]{name: name, desc: description, schema: schema, fn: fn}
}

func (t *typed[A]) Name() string               { return t.name }
func (t *typed[A]) Description() string        { return t.desc }
func (t *typed[A]) Parameters() map[string]any { return t.schema }

func (t *typed[A]) Call(ctx context.Context, raw []byte) (string, error) {
	var a A
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadArguments, t.name, err)
	}
	if missing := missingRequired(t.schema, raw); missing != "" {
		return "", fmt.Errorf("%w: %s: argument %q is required", ErrBadArguments, t.name, missing)
	}
	return t.fn(ctx, a)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) && r < 128 || i > 0 && unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

func schemaOf(t reflect.Type) (map[string]any, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("argument type %v is not a struct", t)
	}
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		var typ string
		switch f.Type.Kind() {
		case reflect.String:
			typ = "string"
		case reflect.Bool:
			typ = "boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			typ = "integer"
		case reflect.Float32, reflect.Float64:
			typ = "number"
		default:
			return nil, fmt.Errorf("field %s: type %v is not supported", f.Name, f.Type)
		}
		p := map[string]any{"type": typ}
		if d := f.Tag.Get("desc"); d != "" {
			p["description"] = d
		}
		props[name] = p
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	return s, nil
}

func missingRequired(schema map[string]any, raw []byte) string {
	req, _ := schema["required"].([]string)
	if len(req) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return req[0]
	}
	for _, k := range req {
		if _, ok := m[k]; !ok {
			return k
		}
	}
	return ""
}

// Registry maps tool names to tools. It is read-only after construction
// and safe for concurrent use.
type Registry struct {
	tools map[string]Tool
	names []string
}

// NewRegistry returns a registry of ts; two tools with one name are an error.
func NewRegistry(ts ...Tool) (*Registry, error) {
	r := &Registry{tools: map[string]Tool{}}
	for _, t := range ts {
		if _, dup := r.tools[t.Name()]; dup {
			return nil, fmt.Errorf("tools: %q registered twice", t.Name())
		}
		r.tools[t.Name()] = t
		r.names = append(r.names, t.Name())
	}
	sort.Strings(r.names)
	return r, nil
}

// Lookup returns the tool called name.
func (r *Registry) Lookup(name string) (Tool, bool) {
	t, ok := r.tools[name]
	return t, ok
}

// Names lists the registered tools, sorted.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Call runs tool name on args; an unregistered name wraps [ErrUnknownTool].
func (r *Registry) Call(ctx context.Context, name string, args []byte) (string, error) {
	t, ok := r.tools[name]
	if !ok {
		return "", fmt.Errorf("%w %q (registered: %s)", ErrUnknownTool, name, strings.Join(r.names, ", "))
	}
	return t.Call(ctx, args)
}

// Arguments of the example tools. The workflow's first interaction is
// created by shared/submit, which declares every tool with one string
// argument "input"; the example tools therefore take exactly that.

// GetTimeArgs are get_time's arguments.
type GetTimeArgs struct {
	Input string `json:"input,omitempty" desc:"IANA time zone such as Europe/Paris; UTC when empty or unknown"`
}

// WordCountArgs are word_count's arguments.
type WordCountArgs struct {
	Input string `json:"input" desc:"the text whose words are counted"`
}

// GetTime returns the current time in a time zone as JSON
// {"time": RFC 3339, "zone": name}. now is the clock (time.Now if nil).
func GetTime(now func() time.Time) Tool {
	if now == nil {
		now = time.Now
	}
	return New("get_time", "Returns the current date and time, in the given IANA time zone or UTC.",
		func(_ context.Context, a GetTimeArgs) (string, error) {
			loc := time.UTC
			if z := strings.TrimSpace(a.Input); z != "" {
				// The model may pass a whole sentence; a zone it is not is
				// not an error for an optional hint.
				if l, err := time.LoadLocation(z); err == nil {
					loc = l
				}
			}
			b, _ := json.Marshal(map[string]string{"time": now().In(loc).Format(time.RFC3339), "zone": loc.String()})
			return string(b), nil
		})
}

// WordCount counts the whitespace-separated words of its input and returns
// the number as decimal text.
func WordCount() Tool {
	return New("word_count", "Counts the words (whitespace-separated) in a text.",
		func(_ context.Context, a WordCountArgs) (string, error) {
			return fmt.Sprint(len(strings.Fields(a.Input))), nil
		})
}

// Default returns the registry of the example tools get_time and
// word_count that the deployed Workflow function uses.
func Default() *Registry {
	r, err := NewRegistry(GetTime(nil), WordCount())
	if err != nil {
		panic(err)
	}
	return r
}
