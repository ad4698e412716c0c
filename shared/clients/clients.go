// Package clients builds the Firestore, Pub/Sub and Gemini clients a Cloud
// Function instance keeps for its lifetime, so every function opens them the
// same way: on a context detached from the first request's cancellation
// (the clients outlive it), with nothing left open when one fails, and with
// errors that name the client that could not be built.
package clients

import (
	"cmp"
	"context"
	"fmt"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/gemini"
)

// Options says which clients to build. Firestore is always built.
type Options struct {
	// Project and Database locate Firestore (Database empty: the default
	// database); Project is also Pub/Sub's.
	Project, Database string
	// PubSub asks for a Pub/Sub client.
	PubSub bool
	// Gemini, when set, asks for a Gemini client with this key and base URL.
	Gemini *config.Gemini
}

// Set is what [Open] built; clients not asked for are nil.
type Set struct {
	Firestore *firestore.Client
	PubSub    *pubsub.Client
	Gemini    *gemini.Client
}

// Open builds the clients o asks for. Construction does not dial, so an
// error means the configuration is wrong: the function's lazy handler
// reports it and tries again on the next request, which helps only once
// the configuration is fixed.
func Open(ctx context.Context, o Options) (Set, error) {
	bg := context.WithoutCancel(ctx)
	var s Set
	db := cmp.Or(o.Database, firestore.DefaultDatabaseID)
	fs, err := firestore.NewClientWithDatabase(bg, o.Project, db)
	if err != nil {
		return Set{}, fmt.Errorf("firestore client (project %q, database %q): %w", o.Project, db, err)
	}
	s.Firestore = fs
	if o.PubSub {
		if s.PubSub, err = pubsub.NewClient(bg, o.Project); err != nil {
			s.Close()
			return Set{}, fmt.Errorf("pubsub client (project %q): %w", o.Project, err)
		}
	}
	if o.Gemini != nil {
		if s.Gemini, err = gemini.New(bg, gemini.Config{APIKey: o.Gemini.APIKey, BaseURL: o.Gemini.BaseURL}); err != nil {
			s.Close()
			return Set{}, fmt.Errorf("gemini client: %w", err)
		}
	}
	return s, nil
}

// Close closes the Firestore and Pub/Sub clients (the Gemini client holds
// nothing to close).
func (s Set) Close() {
	if s.PubSub != nil {
		s.PubSub.Close()
	}
	if s.Firestore != nil {
		s.Firestore.Close()
	}
}
