package eventsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/eventsource-go/eventsource"
)

type ctxKey struct{}

// ctxCodec is a ContextCodec that records the context value it was called
// with, and fails as told.
type ctxCodec struct {
	mu   sync.Mutex
	seen []any
	fail error
}

func (c *ctxCodec) Name() string                  { return "ctxjson" }
func (c *ctxCodec) Marshal(v any) ([]byte, error) { return c.MarshalContext(context.Background(), v) }
func (c *ctxCodec) Unmarshal(data []byte, v any) error {
	return c.UnmarshalContext(context.Background(), data, v)
}

func (c *ctxCodec) MarshalContext(ctx context.Context, v any) ([]byte, error) {
	c.record(ctx)
	return json.Marshal(v)
}

func (c *ctxCodec) UnmarshalContext(ctx context.Context, data []byte, v any) error {
	c.record(ctx)
	if c.fail != nil {
		return c.fail
	}
	return json.Unmarshal(data, v)
}

func (c *ctxCodec) record(ctx context.Context) {
	c.mu.Lock()
	c.seen = append(c.seen, ctx.Value(ctxKey{}))
	c.mu.Unlock()
}

func TestRepositoryPassesContextToCodec(t *testing.T) {
	codec := &ctxCodec{}
	reg := eventsource.NewRegistry(codec)
	var _ eventsource.ContextSerializer = reg
	repo, _ := newRepo(t, eventsource.WithSerializer(reg))
	if err := repo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "request-1")
	if err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c1", Version: 1}, Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if len(codec.seen) != 2 || codec.seen[0] != "request-1" || codec.seen[1] != "request-1" {
		t.Fatalf("codec saw contexts %v, want request-1 twice", codec.seen)
	}
	// The plain methods reach the codec with Background.
	rec, err := reg.MarshalEvent(&ItemAdded{Model: eventsource.Model{ID: "c1", Version: 2}})
	if err != nil || codec.seen[2] != nil {
		t.Fatalf("MarshalEvent: %v, context value %v", err, codec.seen[2])
	}
	if rec.Codec != "ctxjson" {
		t.Fatalf("record codec %q", rec.Codec)
	}
}

func TestRegistryShreddedIsNotCorrupt(t *testing.T) {
	codec := &ctxCodec{fail: fmt.Errorf("subject gone: %w", eventsource.ErrShredded)}
	reg := eventsource.NewRegistry(codec)
	if err := reg.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	rec, err := reg.MarshalEvent(&ItemAdded{Model: eventsource.Model{ID: "c1", Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.UnmarshalEventContext(context.Background(), rec)
	if !errors.Is(err, eventsource.ErrShredded) || errors.Is(err, eventsource.ErrCorruptData) {
		t.Fatalf("err = %v, want ErrShredded and not ErrCorruptData", err)
	}
	codec.fail = errors.New("bad bytes")
	if _, err = reg.UnmarshalEvent(rec); !errors.Is(err, eventsource.ErrCorruptData) {
		t.Fatalf("err = %v, want ErrCorruptData", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	codec.fail = ctx.Err()
	if _, err = reg.UnmarshalEventContext(ctx, rec); !errors.Is(err, context.Canceled) || errors.Is(err, eventsource.ErrCorruptData) {
		t.Fatalf("err = %v, want context.Canceled and not ErrCorruptData", err)
	}
}
