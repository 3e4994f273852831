package dynamodb_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	esdynamo "github.com/eventsource-go/eventsource/store/dynamodb"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storeurl"
)

func TestOpenURL(t *testing.T) {
	endpoint := testenv.DynamoDB.URL(t)
	table := "es-url-" + strings.ReplaceAll(eventsource.NewEventID()[:8], "-", "")
	t.Cleanup(func() { esdynamo.DeleteTable(context.Background(), client(t), table) })
	raw := "dynamodb://" + table + "?endpoint=" + url.QueryEscape(endpoint)
	if _, err := storeurl.Open(context.Background(), raw+"&create=true", storeurl.MustExist()); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("MustExist with create=true on a missing table = %v", err)
	}
	storetest.OpenURL(t, raw+"&create=true")
	storetest.OpenURL(t, raw, storeurl.MustExist())
	_, err := storeurl.Open(context.Background(), "dynamodb://t?regoin=x")
	if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), `"regoin" (dynamodb:// takes create, endpoint, region)`) {
		t.Errorf("a misspelt parameter: %v", err)
	}
}
