package localpush

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Emulator is an in-process pstest server and a client connected to it.
type Emulator struct {
	// Server is the pstest server; tests may inspect Server.Messages().
	Server *pstest.Server
	// Client is a Pub/Sub client for Project connected to Server.
	Client *pubsub.Client
	// Addr is host:port of the server, suitable for PUBSUB_EMULATOR_HOST.
	Addr string
}

// StartPubsub starts pstest on addr (host:port; "" means 127.0.0.1 on a free
// port) and connects a client for project to it. Close stops both.
func StartPubsub(ctx context.Context, addr, project string) (*Emulator, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if project == "" {
		return nil, errors.New("localpush: StartPubsub: empty project")
	}
	srv := pstest.NewServerWithAddress(addr)
	// The client dials (and on Close closes) its own connections, as it
	// would against PUBSUB_EMULATOR_HOST.
	client, err := pubsub.NewClient(ctx, project,
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled())
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("localpush: pubsub client for pstest %s: %w", srv.Addr, err)
	}
	return &Emulator{Server: srv, Client: client, Addr: srv.Addr}, nil
}

// Close closes the client and then the server. Stop any Dispatcher.Run
// using Client first.
func (e *Emulator) Close() error {
	err := e.Client.Close()
	if serr := e.Server.Close(); serr != nil && err == nil {
		err = serr
	}
	return err
}
