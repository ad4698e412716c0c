package localpush

import (
	"encoding/json"
	"time"

	"cloud.google.com/go/pubsub/v2"
)

// PushRequest is the JSON body production Pub/Sub POSTs to a push endpoint
// of a wrapped push subscription. Encode builds one from a received message.
type PushRequest struct {
	Message PushMessage `json:"message"`
	// Subscription is the full name projects/P/subscriptions/S.
	Subscription string `json:"subscription"`
	// DeliveryAttempt is 1 on the first delivery. Production sends it only
	// when the subscription has a dead-letter policy; 0 omits it.
	DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
}

// PushMessage is the message inside a PushRequest. Production sends the id
// and publish time in both camelCase and snake_case spelling.
type PushMessage struct {
	Data             []byte            `json:"data,omitempty"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	MessageID        string            `json:"messageId"`
	MessageIDSnake   string            `json:"message_id"`
	PublishTime      string            `json:"publishTime"`
	PublishTimeSnake string            `json:"publish_time"`
	OrderingKey      string            `json:"orderingKey,omitempty"`
}

// Encode returns the push body for m as delivered by subscription (its full
// name) on delivery attempt attempt (0 when the subscription has no
// dead-letter policy).
func Encode(m *pubsub.Message, subscription string, attempt int) ([]byte, error) {
	pt := m.PublishTime.UTC().Format(time.RFC3339Nano)
	return json.Marshal(PushRequest{
		Message: PushMessage{
			Data:             m.Data,
			Attributes:       m.Attributes,
			MessageID:        m.ID,
			MessageIDSnake:   m.ID,
			PublishTime:      pt,
			PublishTimeSnake: pt,
			OrderingKey:      m.OrderingKey,
		},
		Subscription:    subscription,
		DeliveryAttempt: attempt,
	})
}
