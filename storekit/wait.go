package storekit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sleep waits for d, or until ctx ends (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wrap prefixes a driver's error for the caller: "<store>: <what>: err",
// nil for nil. When ctx has ended and err does not say so (a driver that
// reports a broken connection instead), ctx's error joins the chain, so
// errors.Is(err, context.Canceled) holds for a cancelled call.
func Wrap(ctx context.Context, err error, store, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = errors.Join(ctxErr, err)
	}
	return fmt.Errorf("%s: %s: %w", store, fmt.Sprintf(format, args...), err)
}
