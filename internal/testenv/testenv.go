// Package testenv gives tests real backends: a Firestore emulator client with
// a project id of its own (so packages sharing one emulator never see each
// other's data) and an in-process pstest Pub/Sub server.
//
// ./scripts/test.sh starts one emulator and exports FIRESTORE_EMULATOR_HOST.
// When a package's tests run without it, [Main] starts an emulator for that
// test binary and stops it afterwards, so `go test ./shared/ledger` works on
// its own too.
package testenv

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geminihooks/geminihooks/internal/emulator"
)

// Main runs the tests of a package that uses Firestore: call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		f, err := emulator.StartFirestore(context.Background(), emulator.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer f.Stop()
		os.Setenv("FIRESTORE_EMULATOR_HOST", f.Host)
	}
	return m.Run()
}

var projectSeq atomic.Int64

var nonID = regexp.MustCompile(`[^a-z0-9-]+`)

// Project returns a project id unique to this test, so tests can run in
// parallel against one emulator without sharing data.
func Project(t testing.TB) string {
	name := strings.ToLower(t.Name())
	name = nonID.ReplaceAllString(name, "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d-%d-%s", os.Getpid(), projectSeq.Add(1), strings.Trim(name, "-"))
}

// Firestore returns a client on the emulator for a fresh project of this
// test. It fails the test when FIRESTORE_EMULATOR_HOST is unset (use [Main]).
func Firestore(t testing.TB) (*firestore.Client, string) {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Fatal("FIRESTORE_EMULATOR_HOST is not set: call testenv.Main from TestMain or run ./scripts/test.sh")
	}
	project := Project(t)
	c, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, project
}

// PubSub starts an in-process pstest server and returns a client for project.
func PubSub(t testing.TB, project string) (*pubsub.Client, *pstest.Server) {
	t.Helper()
	srv := pstest.NewServer()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc dial pstest: %v", err)
	}
	c, err := pubsub.NewClient(context.Background(), project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	t.Cleanup(func() { c.Close(); conn.Close(); srv.Close() })
	return c, srv
}
