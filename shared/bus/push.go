package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// ErrInvalidPush reports a request that is not a Pub/Sub push delivery.
// Redelivering it cannot help: answer 400 (Pub/Sub will retry and finally
// dead-letter it, which keeps the evidence).
var ErrInvalidPush = errors.New("invalid pub/sub push request")

// DefaultMaxPushBytes bounds a push body: Pub/Sub messages are at most 10 MB,
// base64 makes that ~13.4 MB, plus the envelope.
const DefaultMaxPushBytes = 14 << 20

// PushMessage is one Pub/Sub message delivered by push.
type PushMessage struct {
	Data        []byte
	Attributes  map[string]string
	MessageID   string
	PublishTime time.Time
	OrderingKey string
	// DeliveryAttempt is 1 on the first delivery. Pub/Sub sets it only on
	// subscriptions with a dead-letter policy; it is 0 when unknown.
	DeliveryAttempt int
	// Subscription is the full subscription name, when the sender gave it.
	Subscription string
}

type pushBody struct {
	Message struct {
		Data         []byte            `json:"data"`
		Attributes   map[string]string `json:"attributes"`
		MessageID    string            `json:"messageId"`
		MessageIDAlt string            `json:"message_id"`
		PublishTime  string            `json:"publishTime"`
		PublishAlt   string            `json:"publish_time"`
		OrderingKey  string            `json:"orderingKey"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// DecodePush reads a push delivery from r. It accepts the plain push format
// of a push subscription, and the binary and structured CloudEvent forms
// Eventarc sends, so a consumer works behind either.
func DecodePush(r *http.Request) (PushMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, DefaultMaxPushBytes))
	if err != nil {
		return PushMessage{}, fmt.Errorf("%w: read body: %v", ErrInvalidPush, err)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/cloudevents+json" {
		var ce struct {
			ID   string          `json:"id"`
			Time string          `json:"time"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			return PushMessage{}, fmt.Errorf("%w: cloudevent: %v", ErrInvalidPush, err)
		}
		return DecodePushBody(ce.Data)
	}
	return DecodePushBody(body)
}

// DecodePushBody decodes the JSON body of a push delivery.
func DecodePushBody(body []byte) (PushMessage, error) {
	var b pushBody
	if err := json.Unmarshal(body, &b); err != nil {
		return PushMessage{}, fmt.Errorf("%w: %v", ErrInvalidPush, err)
	}
	m := PushMessage{
		Data:            b.Message.Data,
		Attributes:      b.Message.Attributes,
		MessageID:       firstNonEmpty(b.Message.MessageID, b.Message.MessageIDAlt),
		OrderingKey:     b.Message.OrderingKey,
		DeliveryAttempt: b.DeliveryAttempt,
		Subscription:    b.Subscription,
	}
	if m.MessageID == "" {
		return PushMessage{}, fmt.Errorf("%w: missing message.messageId", ErrInvalidPush)
	}
	if pt := firstNonEmpty(b.Message.PublishTime, b.Message.PublishAlt); pt != "" {
		t, err := time.Parse(time.RFC3339Nano, pt)
		if err != nil {
			return PushMessage{}, fmt.Errorf("%w: publishTime %q: %v", ErrInvalidPush, pt, err)
		}
		m.PublishTime = t
	}
	if m.Attributes == nil {
		m.Attributes = map[string]string{}
	}
	return m, nil
}

// EncodePushBody renders m in the plain push format; the local push
// dispatcher and tests use it to deliver exactly what production sends.
func EncodePushBody(m PushMessage) []byte {
	var b pushBody
	b.Message.Data = m.Data
	b.Message.Attributes = m.Attributes
	b.Message.MessageID, b.Message.MessageIDAlt = m.MessageID, m.MessageID
	if !m.PublishTime.IsZero() {
		pt := m.PublishTime.UTC().Format(time.RFC3339Nano)
		b.Message.PublishTime, b.Message.PublishAlt = pt, pt
	}
	b.Message.OrderingKey = m.OrderingKey
	b.Subscription = m.Subscription
	b.DeliveryAttempt = m.DeliveryAttempt
	out, _ := json.Marshal(b)
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
