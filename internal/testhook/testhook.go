// Package testhook lets the conformance suite reach inside a store's append:
// a store calls BeforeCommit after its records are written and before they
// are committed, so a test can delay one commit while others land, or cancel
// the context at the worst moment. Without a hook in the context it costs
// one context lookup.
package testhook

import "context"

type key struct{}

// WithBeforeCommit returns a context whose appends call fn before committing.
func WithBeforeCommit(ctx context.Context, fn func(context.Context)) context.Context {
	return context.WithValue(ctx, key{}, fn)
}

// BeforeCommit runs the hook in ctx, if there is one.
func BeforeCommit(ctx context.Context) {
	if fn, ok := ctx.Value(key{}).(func(context.Context)); ok {
		fn(ctx)
	}
}

// Has reports whether ctx carries a hook, so a store whose fast path has no
// separate commit step can take its slow path only in tests.
func Has(ctx context.Context) bool {
	_, ok := ctx.Value(key{}).(func(context.Context))
	return ok
}
