package nats

import (
	"context"
	"net/url"

	"github.com/eventsource-go/eventsource/storeurl"
)

// nats://host:4222, with stream= and subject=.
func init() {
	storeurl.Register(storeurl.Scheme{Name: "nats", Params: []string{"stream", "subject"}, Open: openURL})
}

func openURL(ctx context.Context, u *url.URL, o storeurl.Options) (storeurl.Store, error) {
	q := u.Query()
	var opts []Option
	if q.Has("stream") {
		opts = append(opts, WithStreamName(q.Get("stream")))
	}
	if q.Has("subject") {
		opts = append(opts, WithSubjectPrefix(q.Get("subject")))
	}
	if o.MustExist {
		opts = append(opts, WithoutAutoSetup())
	}
	v := *u
	v.RawQuery = ""
	return Open(ctx, v.String(), opts...)
}
