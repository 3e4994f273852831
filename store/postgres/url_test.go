package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storeurl"
)

func TestOpenURL(t *testing.T) {
	schema := pgtest.Schema(t, "es_url_")
	for _, scheme := range []string{"postgres", "postgresql"} {
		u := strings.Replace(testenv.Postgres.URL(t), "postgres://", scheme+"://", 1)
		storetest.OpenURL(t, u+"&schema="+schema+"&prefix="+scheme+"_")
	}
	_, err := storeurl.Open(context.Background(), "postgres://user:secret@127.0.0.1:1/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an unreachable server's error leaks the password, or is missing: %v", err)
	}
}
