package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrInvalidEnvelope reports a body that is not a Gemini webhook envelope.
// A retry of the same body can never succeed.
var ErrInvalidEnvelope = errors.New("invalid webhook envelope")

// Envelope is the thin payload of a Gemini webhook delivery.
type Envelope struct {
	// Type is the event type, e.g. "batch.succeeded". Unknown types are kept.
	Type string
	// Version is the payload version ("v1" today).
	Version string
	// Timestamp is when the event happened at Gemini; zero if absent or unparseable.
	Timestamp time.Time
	// Data holds the pointer to the job and any error details.
	Data Data
}

// Data is the "data" object of an envelope. Fields Gemini documents are typed;
// everything else is preserved in Extra so nothing is lost when republished.
type Data struct {
	ID            string `json:"id"`
	OutputFileURI string `json:"output_file_uri,omitempty"`
	FileName      string `json:"file_name,omitempty"`
	VideoURI      string `json:"video_uri,omitempty"`
	ErrorCode     string `json:"error_code,omitempty"`
	ErrorMessage  string `json:"error_message,omitempty"`
	// Extra holds data fields geminihooks does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

var knownDataFields = map[string]bool{
	"id": true, "output_file_uri": true, "file_name": true, "video_uri": true,
	"error_code": true, "error_message": true,
}

// ParseEnvelope decodes a webhook body. It fails with [ErrInvalidEnvelope]
// when the body is not a JSON object, "type" is missing, not a string or
// not a usable type (see [CheckText], [MaxTypeBytes]), "data.id" is missing,
// or "timestamp" is a valid RFC 3339 time outside the years 0001–9999 (it
// could never be stored). Other oddities (unknown fields, numeric error
// codes, an unparseable timestamp) are tolerated.
func ParseEnvelope(body []byte) (Envelope, error) {
	var raw struct {
		Type      *string                    `json:"type"`
		Version   json.RawMessage            `json:"version"`
		Timestamp json.RawMessage            `json:"timestamp"`
		Data      map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrInvalidEnvelope, err)
	}
	if raw.Type == nil || *raw.Type == "" {
		return Envelope{}, fmt.Errorf("%w: missing type", ErrInvalidEnvelope)
	}
	if err := CheckText("event type", *raw.Type, MaxTypeBytes); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	env := Envelope{Type: *raw.Type, Version: looseString(raw.Version)}
	if ts := looseString(raw.Timestamp); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			if !ValidTimestamp(t.UTC()) {
				return Envelope{}, fmt.Errorf("%w: timestamp outside the years 0001-9999", ErrInvalidEnvelope)
			}
			env.Timestamp = t.UTC()
		}
	}
	if raw.Data == nil {
		return Envelope{}, fmt.Errorf("%w: missing data", ErrInvalidEnvelope)
	}
	d := dataFromFields(raw.Data)
	if d.ID == "" {
		return Envelope{}, fmt.Errorf("%w: missing data.id", ErrInvalidEnvelope)
	}
	env.Data = d
	return env, nil
}

// looseString renders a JSON scalar as a string: strings unquoted, numbers and
// booleans verbatim; null, objects and arrays as "".
func looseString(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	case '{', '[', 'n':
		return ""
	default:
		if _, err := strconv.ParseFloat(string(v), 64); err == nil || string(v) == "true" || string(v) == "false" {
			return string(v)
		}
		return ""
	}
}

// MarshalJSON writes Data with its Extra fields merged back in.
func (d Data) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(d.Extra)+6)
	for k, v := range d.Extra {
		m[k] = v
	}
	m["id"] = d.ID
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("output_file_uri", d.OutputFileURI)
	set("file_name", d.FileName)
	set("video_uri", d.VideoURI)
	set("error_code", d.ErrorCode)
	set("error_message", d.ErrorMessage)
	return json.Marshal(m)
}

// UnmarshalJSON reads Data leniently, keeping unknown fields in Extra.
func (d *Data) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	*d = dataFromFields(fields)
	return nil
}

func dataFromFields(f map[string]json.RawMessage) Data {
	d := Data{
		ID:            looseString(f["id"]),
		OutputFileURI: looseString(f["output_file_uri"]),
		FileName:      looseString(f["file_name"]),
		VideoURI:      looseString(f["video_uri"]),
		ErrorCode:     looseString(f["error_code"]),
		ErrorMessage:  looseString(f["error_message"]),
	}
	for k, v := range f {
		if !knownDataFields[k] {
			if d.Extra == nil {
				d.Extra = make(map[string]json.RawMessage)
			}
			d.Extra[k] = v
		}
	}
	return d
}

// OutputURI is the result location the event points at, whichever of the
// disputed field names Gemini used.
func (d Data) OutputURI() string {
	if d.OutputFileURI != "" {
		return d.OutputFileURI
	}
	return d.VideoURI
}
