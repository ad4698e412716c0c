package event

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
)

// Bounds of the parts of a [JobError] taken from Gemini (or a webhook).
const (
	MaxErrorCodeBytes    = 128
	MaxErrorMessageBytes = 4096
)

// NormalizeError turns an error in any shape Gemini uses into a [JobError]
// with the canonical code as a decimal string and the canonical status name
// (google.rpc.Code), so stored errors look alike whatever their source:
//
//   - a google.rpc.Status ({"code": 3, "message": …}: failed batch lines,
//     batch and video operation errors): code 0–16 is the canonical code;
//   - the Google HTTP error ({"code": 400, "status": "INVALID_ARGUMENT"}):
//     the status name wins, an HTTP code alone maps by the standard table;
//   - an Interactions API error ({"code": "invalid_request"}, possibly a URI
//     ending in the word): known words map to their canonical status;
//   - a webhook's data.error_code ("INVALID_ARGUMENT", "3" or a word).
//
// code may be nil, a JSON number (float64, json.Number, any Go integer) or a
// string; status may be empty. A code that cannot be mapped is kept
// verbatim (bounded) with an empty Status. The result is nil when all three
// are empty.
func NormalizeError(c any, status, message string) *JobError {
	je := &JobError{Message: Bound(strings.TrimSpace(message), MaxErrorMessageBytes)}
	raw, num, isNum := codeValue(c)
	canon, known := canonicalName(status)
	switch {
	case known:
	case isNum && num >= 0 && num <= 16:
		canon, known = code.Code(num), true
	case isNum && num >= 100 && num <= 599:
		canon, known = codeForHTTP(int(num)), true
	case !isNum && raw != "":
		canon, known = canonicalName(raw)
	}
	switch {
	case known:
		je.Code, je.Status = strconv.Itoa(int(canon)), canon.String()
	case raw != "":
		je.Code = Bound(raw, MaxErrorCodeBytes)
		if status != "" {
			je.Status = Bound(status, MaxErrorCodeBytes)
		}
	case status != "":
		je.Status = Bound(status, MaxErrorCodeBytes)
	}
	if je.Code == "" && je.Status == "" && je.Message == "" {
		return nil
	}
	return je
}

// ErrorFromMap normalises a decoded JSON error object: a google.rpc.Status,
// the Google HTTP error body's "error", or an Interactions error.
func ErrorFromMap(m map[string]any) *JobError {
	if m == nil {
		return nil
	}
	status, _ := m["status"].(string)
	msg, _ := m["message"].(string)
	return NormalizeError(m["code"], status, msg)
}

// codeValue renders a code as text and, when it is an integer (or a string
// holding one), as a number.
func codeValue(c any) (raw string, num int64, isNum bool) {
	switch v := c.(type) {
	case nil:
		return "", 0, false
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), int64(v), true
		}
		return strconv.FormatFloat(v, 'g', -1, 64), 0, false
	case json.Number:
		return codeValue(v.String())
	case int:
		return strconv.Itoa(v), int64(v), true
	case int32:
		return strconv.Itoa(int(v)), int64(v), true
	case int64:
		return strconv.FormatInt(v, 10), v, true
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s, n, true
		}
		return s, 0, false
	case bool:
		return strconv.FormatBool(v), 0, false
	default:
		b, _ := json.Marshal(v)
		return string(b), 0, false
	}
}

// errorWords maps the words other Gemini surfaces (the Interactions API,
// webhooks) use for an error to the canonical code. Canonical names in any
// case are accepted too ([canonicalName]).
var errorWords = map[string]code.Code{
	"invalid_request":       code.Code_INVALID_ARGUMENT,
	"invalid_request_error": code.Code_INVALID_ARGUMENT,
	"bad_request":           code.Code_INVALID_ARGUMENT,
	"invalid":               code.Code_INVALID_ARGUMENT,
	"validation_error":      code.Code_INVALID_ARGUMENT,
	"forbidden":             code.Code_PERMISSION_DENIED,
	"unauthorized":          code.Code_UNAUTHENTICATED,
	"authentication_error":  code.Code_UNAUTHENTICATED,
	"permission_error":      code.Code_PERMISSION_DENIED,
	"rate_limit":            code.Code_RESOURCE_EXHAUSTED,
	"rate_limited":          code.Code_RESOURCE_EXHAUSTED,
	"rate_limit_exceeded":   code.Code_RESOURCE_EXHAUSTED,
	"rate_limit_error":      code.Code_RESOURCE_EXHAUSTED,
	"quota_exceeded":        code.Code_RESOURCE_EXHAUSTED,
	"too_many_requests":     code.Code_RESOURCE_EXHAUSTED,
	"internal_error":        code.Code_INTERNAL,
	"server_error":          code.Code_INTERNAL,
	"api_error":             code.Code_INTERNAL,
	"overloaded":            code.Code_UNAVAILABLE,
	"overloaded_error":      code.Code_UNAVAILABLE,
	"service_unavailable":   code.Code_UNAVAILABLE,
	"timeout":               code.Code_DEADLINE_EXCEEDED,
	"conflict":              code.Code_ABORTED,
	"canceled":              code.Code_CANCELLED,
	"not_implemented":       code.Code_UNIMPLEMENTED,
}

// canonicalName maps a status name or error word (any case; "-" or " " for
// "_"; a URI's last path segment) to its canonical code.
func canonicalName(s string) (code.Code, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if i := strings.LastIndexAny(s, "/#"); i >= 0 && strings.Contains(s, ":") {
		s = s[i+1:] // a URI identifying the error type
	}
	w := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(s))
	if c, ok := code.Code_value[strings.ToUpper(w)]; ok {
		return code.Code(c), true
	}
	c, ok := errorWords[w]
	return c, ok
}

// codeForHTTP maps an HTTP status to the canonical code it stands for
// (the mapping documented on google.rpc.Code; the first code listed for a
// status shared by several).
func codeForHTTP(s int) code.Code {
	switch s {
	case 200:
		return code.Code_OK
	case 400:
		return code.Code_INVALID_ARGUMENT
	case 401:
		return code.Code_UNAUTHENTICATED
	case 403:
		return code.Code_PERMISSION_DENIED
	case 404:
		return code.Code_NOT_FOUND
	case 409:
		return code.Code_ABORTED
	case 429:
		return code.Code_RESOURCE_EXHAUSTED
	case 499:
		return code.Code_CANCELLED
	case 501:
		return code.Code_UNIMPLEMENTED
	case 503:
		return code.Code_UNAVAILABLE
	case 504:
		return code.Code_DEADLINE_EXCEEDED
	}
	switch {
	case s >= 200 && s < 300:
		return code.Code_OK
	case s >= 400 && s < 500:
		return code.Code_FAILED_PRECONDITION
	case s >= 500:
		return code.Code_INTERNAL
	}
	return code.Code_UNKNOWN
}

// HTTPStatusFor maps a canonical status name (or error word) to its HTTP
// status, 0 when it is not one. It lets an error that carries only a
// canonical status be classified like an HTTP answer.
func HTTPStatusFor(status string) int {
	c, ok := canonicalName(status)
	if !ok {
		return 0
	}
	switch c {
	case code.Code_OK:
		return 200
	case code.Code_CANCELLED:
		return 499
	case code.Code_INVALID_ARGUMENT, code.Code_FAILED_PRECONDITION, code.Code_OUT_OF_RANGE:
		return 400
	case code.Code_DEADLINE_EXCEEDED:
		return 504
	case code.Code_NOT_FOUND:
		return 404
	case code.Code_ALREADY_EXISTS, code.Code_ABORTED:
		return 409
	case code.Code_PERMISSION_DENIED:
		return 403
	case code.Code_UNAUTHENTICATED:
		return 401
	case code.Code_RESOURCE_EXHAUSTED:
		return 429
	case code.Code_UNIMPLEMENTED:
		return 501
	case code.Code_UNAVAILABLE:
		return 503
	default: // UNKNOWN, INTERNAL, DATA_LOSS
		return 500
	}
}
