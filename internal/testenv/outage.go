package testenv

import (
	"context"
	"math"
	"net"
	"strconv"
	"testing"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geminihooks/geminihooks/internal/emulator"
)

// Outage is a Firestore emulator and a pstest server of one test's own,
// on fixed addresses, so the test can stop them (a real outage: refused
// connections, not injected errors) and start them again.
type Outage struct {
	t       testing.TB
	Project string
	// FS and PS are clients that survive restarts (gRPC reconnects).
	FS *firestore.Client
	PS *pubsub.Client

	emu    *emulator.Firestore
	fsPort int
	psAddr string
	psSrv  *pstest.Server
}

// NewOutage starts both servers. It takes a cold JVM start (seconds).
func NewOutage(t testing.TB) *Outage {
	t.Helper()
	o := &Outage{t: t, Project: Project(t)}
	port, err := emulator.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	o.fsPort = port
	o.StartFirestore()
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		t.Fatal(err)
	}
	if o.FS, err = firestore.NewClient(context.Background(), o.Project, option.WithGRPCConn(conn)); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.psAddr = l.Addr().String()
	l.Close()
	o.StartPubSub()
	psConn, err := grpc.NewClient(o.psAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if o.PS, err = pubsub.NewClient(context.Background(), o.Project, option.WithGRPCConn(psConn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.PS.Close()
		psConn.Close()
		o.FS.Close()
		o.StopPubSub()
		o.StopFirestore()
	})
	return o
}

// StartFirestore starts the emulator (empty) on the Outage's port.
func (o *Outage) StartFirestore() {
	o.t.Helper()
	emu, err := emulator.StartFirestore(context.Background(), emulator.Options{Port: o.fsPort})
	if err != nil {
		o.t.Fatalf("start firestore emulator: %v", err)
	}
	o.emu = emu
}

// StopFirestore stops the emulator; its data is gone.
func (o *Outage) StopFirestore() {
	if o.emu != nil {
		o.emu.Stop()
		o.emu = nil
	}
}

// StartPubSub starts an empty pstest server on the Outage's address and
// returns it (topics must be created again).
func (o *Outage) StartPubSub() *pstest.Server {
	o.psSrv = pstest.NewServerWithAddress(o.psAddr)
	return o.psSrv
}

// PubSubServer is the running pstest server.
func (o *Outage) PubSubServer() *pstest.Server { return o.psSrv }

// StopPubSub stops the pstest server.
func (o *Outage) StopPubSub() {
	if o.psSrv != nil {
		o.psSrv.Close()
		o.psSrv = nil
	}
}

// ownerCreds is what the Firestore client sends to an emulator.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }
