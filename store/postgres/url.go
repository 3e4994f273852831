package postgres

import (
	"context"
	"net/url"

	"github.com/eventsource-go/eventsource/storeurl"
)

// postgres:// and postgresql:// URLs, with schema= and prefix=; other
// parameters go to pgx.
func init() {
	for _, name := range []string{"postgres", "postgresql"} {
		storeurl.Register(storeurl.Scheme{Name: name, Params: []string{"prefix", "schema"}, PassThrough: true, Open: openURL})
	}
}

func openURL(ctx context.Context, u *url.URL, o storeurl.Options) (storeurl.Store, error) {
	q := u.Query()
	var opts []Option
	if q.Has("prefix") {
		opts = append(opts, WithTablePrefix(q.Get("prefix")))
	}
	if q.Has("schema") {
		opts = append(opts, WithSchema(q.Get("schema")))
	}
	if o.MustExist {
		opts = append(opts, WithoutAutoMigrate())
	}
	q.Del("prefix")
	q.Del("schema")
	v := *u
	v.RawQuery = q.Encode()
	return Open(ctx, v.String(), opts...)
}
