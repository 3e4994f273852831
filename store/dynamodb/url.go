package dynamodb

import (
	"context"
	"net/url"

	"github.com/eventsource-go/eventsource/storeurl"
)

// dynamodb://table, with region=, endpoint= and create=true (see Open).
func init() {
	storeurl.Register(storeurl.Scheme{Name: "dynamodb", Params: []string{"create", "endpoint", "region"}, Open: openURL})
}

func openURL(ctx context.Context, u *url.URL, o storeurl.Options) (storeurl.Store, error) {
	v := *u
	if o.MustExist {
		q := v.Query()
		q.Del("create")
		v.RawQuery = q.Encode()
	}
	return Open(ctx, v.String())
}
