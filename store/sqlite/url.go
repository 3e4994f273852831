package sqlite

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storeurl"
)

// sqlite://events.db (relative) or sqlite:///abs/path.db, with prefix=.
func init() {
	storeurl.Register(storeurl.Scheme{Name: "sqlite", Params: []string{"prefix"}, Open: openURL})
}

func openURL(ctx context.Context, u *url.URL, o storeurl.Options) (storeurl.Store, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, fmt.Errorf("%w: %q names no file (sqlite://events.db or sqlite:///abs/path.db)", eventsource.ErrInvalidConfig, u.Redacted())
	}
	var opts []Option
	if q := u.Query(); q.Has("prefix") {
		opts = append(opts, WithTablePrefix(q.Get("prefix")))
	}
	if o.MustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: sqlite %s does not exist", eventsource.ErrNotFound, path)
		}
		opts = append(opts, WithoutAutoMigrate())
	}
	return Open(ctx, path, opts...)
}
