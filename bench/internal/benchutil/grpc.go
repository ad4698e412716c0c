package benchutil

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// ownerCreds is what the Firestore client sends to the emulator.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

// FirestoreEmulatorClient returns a Firestore client on the emulator at
// FIRESTORE_EMULATOR_HOST whose connection carries the given interceptors.
// With the emulator, firestore.NewClient dials its own connection and
// ignores option.WithGRPCDialOption, so the connection is dialled here and
// passed with option.WithGRPCConn (the last WithGRPCConn wins).
func FirestoreEmulatorClient(ctx context.Context, project string, dial ...grpc.DialOption) (*firestore.Client, *grpc.ClientConn, error) {
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if host == "" {
		return nil, nil, fmt.Errorf("FIRESTORE_EMULATOR_HOST is not set")
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{})}, dial...)
	conn, err := grpc.NewClient(host, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("dial firestore emulator %s: %w", host, err)
	}
	c, err := firestore.NewClient(ctx, project, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("firestore client: %w", err)
	}
	return c, conn, nil
}

// PubsubClient returns a Pub/Sub client for project on the emulator at addr
// (pstest) whose connection carries the given dial options.
func PubsubClient(ctx context.Context, project, addr string, dial ...grpc.DialOption) (*pubsub.Client, error) {
	opts := []option.ClientOption{option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	for _, d := range dial {
		opts = append(opts, option.WithGRPCDialOption(d))
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client on %s: %w", addr, err)
	}
	return c, nil
}

// RPCCounter counts gRPC calls per full method name.
type RPCCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

// DialOptions returns the unary and stream interceptors that count.
func (c *RPCCounter) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.add(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.add(method)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}
}

func (c *RPCCounter) add(method string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[method]++
	c.mu.Unlock()
}

// Snapshot returns the counts so far and their total.
func (c *RPCCounter) Snapshot() (map[string]int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	var total int64
	for k, v := range c.n {
		out[k] = v
		total += v
	}
	return out, total
}

// Reset zeroes the counts.
func (c *RPCCounter) Reset() {
	c.mu.Lock()
	c.n = nil
	c.mu.Unlock()
}

// FaultInjector makes a fraction of gRPC calls fail with codes.Unavailable:
// half of the failures before the call reaches the server (nothing
// happened), half after it returned (it happened, but the caller cannot
// know), which is what a flaky network or an overloaded backend looks like
// to the client. Streams fail only before they start.
type FaultInjector struct {
	// Rate is the probability (0..1) that a call fails.
	Rate float64
	// Enabled switches injection on and off (off while setting up).
	Enabled atomic.Bool

	mu       sync.Mutex
	rng      *rand.Rand
	injected atomic.Int64
	calls    atomic.Int64
}

// NewFaultInjector returns an injector with the given rate and seed, enabled.
func NewFaultInjector(rate float64, seed uint64) *FaultInjector {
	f := &FaultInjector{Rate: rate, rng: rand.New(rand.NewPCG(seed, 99))}
	f.Enabled.Store(true)
	return f
}

func (f *FaultInjector) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64()
}

// Injected is how many calls were failed; Calls how many were seen.
func (f *FaultInjector) Injected() int64 { return f.injected.Load() }

// Calls is how many calls passed through the injector.
func (f *FaultInjector) Calls() int64 { return f.calls.Load() }

// DialOptions returns the interceptors.
func (f *FaultInjector) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			f.calls.Add(1)
			if !f.Enabled.Load() {
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			r := f.roll()
			if r < f.Rate/2 {
				f.injected.Add(1)
				return status.Error(codes.Unavailable, "chaos: injected failure before the call")
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && r < f.Rate {
				f.injected.Add(1)
				return status.Error(codes.Unavailable, "chaos: injected failure after the call (response lost)")
			}
			return err
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			f.calls.Add(1)
			if f.Enabled.Load() && f.roll() < f.Rate {
				f.injected.Add(1)
				return nil, status.Error(codes.Unavailable, "chaos: injected stream failure")
			}
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}
}
