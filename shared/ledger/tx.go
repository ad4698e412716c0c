package ledger

import (
	"context"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// txAttempts bounds how often runTx runs a transaction whose commit
// outcome was lost.
const txAttempts = 3

// runTx runs f in a transaction like RunTransaction, and runs it again when
// the transaction failed in a way RunTransaction does not retry but a fresh
// one can fix: a commit whose response was lost (the retry then finds the
// transaction "invalid or closed") or a dropped connection. Every
// transaction in this package reads what it writes, so running it again
// after a commit that did apply writes the same result.
func (s *Store) runTx(ctx context.Context, f func(context.Context, *firestore.Transaction) error) error {
	var err error
	for attempt := 1; attempt <= txAttempts; attempt++ {
		if err = s.c.RunTransaction(ctx, f); err == nil || !retryableTx(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	return err
}

func retryableTx(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted:
		return true
	case codes.InvalidArgument:
		return strings.Contains(err.Error(), "Transaction is invalid or closed") ||
			strings.Contains(err.Error(), "transaction") && strings.Contains(err.Error(), "expired")
	}
	return false
}
