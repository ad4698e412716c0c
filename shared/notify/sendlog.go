package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/geminihooks/geminihooks/shared/event"
)

// NotificationsCollection holds one document per (event, destination).
const NotificationsCollection = "notifications"

// FirestoreLog is a [SendLog] in Firestore: notifications/{event_id}.{name}
// with status sending|sent, a lease while sending, and expire_at for TTL.
type FirestoreLog struct {
	Client *firestore.Client
	// Lease bounds how long a crashed sender blocks others. Defaults to 60s.
	Lease time.Duration
	// TTL sets expire_at. Defaults to 30 days.
	TTL time.Duration
	Now func() time.Time
}

func (l *FirestoreLog) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

// Begin implements [SendLog].
func (l *FirestoreLog) Begin(ctx context.Context, key string) (token string, sent, inFlight bool, err error) {
	lease, ttl := l.Lease, l.TTL
	if lease <= 0 {
		lease = 60 * time.Second
	}
	if ttl <= 0 {
		ttl = 30 * 24 * time.Hour
	}
	ref := l.Client.Collection(NotificationsCollection).Doc(event.EscapeDocID(key))
	tok := newToken()
	err = l.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		token, sent, inFlight = "", false, false
		snap, err := tx.Get(ref)
		now := l.now()
		if err == nil && snap.Exists() {
			st, _ := snap.DataAt("status")
			until, _ := snap.DataAt("lease_until")
			if st == "sent" {
				sent = true
				return nil
			}
			if t, ok := until.(time.Time); ok && t.After(now) {
				inFlight = true
				return nil
			}
		}
		token = tok
		return tx.Set(ref, map[string]any{
			"key": key, "status": "sending", "token": tok, "lease_until": now.Add(lease),
			"updated_at": now, "expire_at": now.Add(ttl), "attempts": firestore.Increment(1),
		}, firestore.MergeAll)
	})
	if err != nil {
		return "", false, false, fmt.Errorf("firestore claim %s: %w (retryable)", ref.Path, err)
	}
	return token, sent, inFlight, nil
}

// Finish implements [SendLog].
func (l *FirestoreLog) Finish(ctx context.Context, key, token string) error {
	ref := l.Client.Collection(NotificationsCollection).Doc(event.EscapeDocID(key))
	_, err := ref.Update(ctx, []firestore.Update{
		{Path: "status", Value: "sent"}, {Path: "sent_at", Value: l.now()},
		{Path: "lease_until", Value: firestore.Delete}, {Path: "token", Value: firestore.Delete},
	})
	if err != nil {
		return fmt.Errorf("firestore update %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// Abort implements [SendLog]: it releases the lease if still held by token.
func (l *FirestoreLog) Abort(ctx context.Context, key, token string) error {
	ref := l.Client.Collection(NotificationsCollection).Doc(event.EscapeDocID(key))
	return l.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		if t, _ := snap.DataAt("token"); t != token {
			return nil
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "status", Value: "failed"}, {Path: "lease_until", Value: firestore.Delete}, {Path: "token", Value: firestore.Delete},
		})
	})
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
