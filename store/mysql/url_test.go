package mysql_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storeurl"
)

func TestOpenURL(t *testing.T) {
	prefix := randomPrefix(t)
	t.Cleanup(func() { dropTables(testDB(t), prefix) })
	dsn := testenv.MySQL.URL(t) // root@tcp(127.0.0.1:3306)/test
	storetest.OpenURL(t, "mysql://"+strings.NewReplacer("tcp(", "", ")", "").Replace(dsn)+"?timeout=5s&prefix="+prefix)
	_, err := storeurl.Open(context.Background(), "mysql://root@127.0.0.1:1/test?prefixx=a")
	if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), `"prefixx"`) {
		t.Errorf("a misspelt parameter: %v", err)
	}
}
