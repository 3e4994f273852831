package eventsource

import (
	"context"
	"maps"
)

type metadataKey struct{}

// ContextWithMetadata returns a context whose saves attach md (merged over
// metadata already in ctx) to every record: correlation and causation IDs,
// the acting user, a tenant. Metadata stays in clear text for filtering.
func ContextWithMetadata(ctx context.Context, md map[string]string) context.Context {
	merged := maps.Clone(MetadataFrom(ctx))
	if merged == nil {
		merged = make(map[string]string, len(md))
	}
	maps.Copy(merged, md)
	return context.WithValue(ctx, metadataKey{}, merged)
}

// MetadataFrom returns the metadata ContextWithMetadata put in ctx, or nil.
// The map must not be modified.
func MetadataFrom(ctx context.Context) map[string]string {
	md, _ := ctx.Value(metadataKey{}).(map[string]string)
	return md
}
