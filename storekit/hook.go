package storekit

// The commit hook lets the conformance suite reach inside a store's append:
// a store calls BeforeCommit after its records are written (their positions
// taken) and before they are committed, so a test can delay one commit
// while others land, or cancel the context at the worst moment; a store
// that does is tested on atomicity under cancellation and on the
// no-missed-events invariant (storetest.Features.CommitHook). Without a
// hook in the context it costs one context lookup. A store whose append is
// one statement, with no step of its own between writing and committing
// (PostgreSQL's), has no place to call it: its tests hold commits open in
// the database instead (storetest.Features.SlowType).

import "context"

type hookKey struct{}

// WithBeforeCommit returns a context whose appends call fn before committing.
func WithBeforeCommit(ctx context.Context, fn func(context.Context)) context.Context {
	return context.WithValue(ctx, hookKey{}, fn)
}

// BeforeCommit runs the hook in ctx, if there is one.
func BeforeCommit(ctx context.Context) {
	if fn, ok := ctx.Value(hookKey{}).(func(context.Context)); ok {
		fn(ctx)
	}
}
