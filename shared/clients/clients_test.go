package clients_test

import (
	"context"
	"strings"
	"testing"

	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/config"
)

// Construction dials nothing, so these run without emulators.
func TestOpen(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	s, err := clients.Open(ctx, clients.Options{Project: "p", Database: "(default)"})
	if err != nil || s.Firestore == nil || s.PubSub != nil || s.Gemini != nil {
		t.Fatalf("Firestore only: %+v, %v", s, err)
	}
	s.Close()

	s, err = clients.Open(ctx, clients.Options{Project: "p", PubSub: true, Gemini: &config.Gemini{APIKey: "k"}})
	if err != nil || s.Firestore == nil || s.PubSub == nil || s.Gemini == nil {
		t.Fatalf("all three: %+v, %v", s, err)
	}
	cancel() // the first request ends; the clients must not depend on it
	s.Close()

	for _, tc := range []struct {
		name string
		o    clients.Options
		want string
	}{
		{"no project", clients.Options{}, "firestore client"},
		{"no Gemini key", clients.Options{Project: "p", PubSub: true, Gemini: &config.Gemini{}}, "gemini client"},
	} {
		if _, err := clients.Open(context.Background(), tc.o); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to start with %q", tc.name, err, tc.want)
		}
	}
}
