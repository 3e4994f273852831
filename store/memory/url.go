package memory

import (
	"context"
	"net/url"

	"github.com/eventsource-go/eventsource/storeurl"
)

// memory:// opens an empty store.
func init() {
	storeurl.Register(storeurl.Scheme{
		Name: "memory",
		Open: func(context.Context, *url.URL, storeurl.Options) (storeurl.Store, error) { return New(), nil },
	})
}
