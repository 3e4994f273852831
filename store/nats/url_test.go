package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storeurl"
)

func TestOpenURL(t *testing.T) {
	srv := startServer(t, t.TempDir())
	storetest.OpenURL(t, srv.ClientURL()+"?stream=STOREURL&subject=storeurl")
	_, err := storeurl.Open(context.Background(), "nats://127.0.0.1:1?strem=X")
	if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), `"strem" (nats:// takes stream, subject)`) {
		t.Errorf("a misspelt parameter: %v", err)
	}
}
