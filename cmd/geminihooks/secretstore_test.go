package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// fakeSecretManager keeps secret versions in memory, enough for the three
// calls the CLI makes through the real client library.
type fakeSecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	mu       sync.Mutex
	versions map[string][][]byte // secret name → payloads, oldest first
}

func (f *fakeSecretManager) CreateSecret(_ context.Context, r *secretmanagerpb.CreateSecretRequest) (*secretmanagerpb.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.Parent + "/secrets/" + r.SecretId
	if _, ok := f.versions[name]; ok {
		return nil, status.Error(codes.AlreadyExists, "exists")
	}
	f.versions[name] = nil
	return &secretmanagerpb.Secret{Name: name}, nil
}

func (f *fakeSecretManager) AddSecretVersion(_ context.Context, r *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.versions[r.Parent]
	if !ok {
		return nil, status.Error(codes.NotFound, "no secret")
	}
	f.versions[r.Parent] = append(vs, r.Payload.Data)
	return &secretmanagerpb.SecretVersion{Name: r.Parent + "/versions/x"}, nil
}

func (f *fakeSecretManager) AccessSecretVersion(_ context.Context, r *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.versions[strings.TrimSuffix(r.Name, "/versions/latest")]
	if len(vs) == 0 {
		return nil, status.Error(codes.NotFound, "no version")
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Payload: &secretmanagerpb.SecretPayload{Data: vs[len(vs)-1]}}, nil
}

func TestWebhooksSecretManager(t *testing.T) {
	fake := &fakeSecretManager{versions: map[string][][]byte{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(gs, fake)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	_, url := startSim(t)
	const secret = "projects/p/secrets/gemini-webhook"
	g := []string{"--gemini-url", url, "--api-key", "k"}
	sm := []string{"--secret-manager", secret, "--secret-manager-endpoint", lis.Addr().String()}

	r := mustCLI(t, append(append(g, "--format", "json", "webhooks", "create", "--uri", "https://example.com/hook"), sm...)...)
	var created struct {
		Webhook struct {
			ID string `json:"id"`
		} `json:"webhook"`
	}
	decodeJSON(t, r.stdout, &created)
	versions := func() [][]byte {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.versions[secret]
	}
	v := versions()
	if len(v) != 1 || len(webhook.SplitSecrets(string(v[0]))) != 1 {
		t.Fatalf("after create: %d versions", len(v))
	}
	first := webhook.SplitSecrets(string(v[0]))[0]
	if strings.Contains(r.stdout, first) {
		t.Error("create printed the secret")
	}

	mustCLI(t, append(append(g, "webhooks", "rotate", created.Webhook.ID), sm...)...)
	v = versions()
	if len(v) != 2 {
		t.Fatalf("after rotate: %d versions, want 2", len(v))
	}
	list := webhook.SplitSecrets(string(v[1]))
	if len(list) != 2 || list[1] != first || list[0] == first {
		t.Errorf("latest version holds %d secrets (old second: %v)", len(list), len(list) == 2 && list[1] == first)
	}
}
