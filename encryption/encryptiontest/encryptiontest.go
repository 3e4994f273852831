// Package encryptiontest is the conformance suite of crypto-shredding on an
// event store: events saved through an encrypting registry are ciphertext in
// the store, load back in clear, and once their subject's key is deleted
// every read path (Load, a registry decode, a query, a projection) reports
// ErrShredded, or runs past them with redaction. Each store's tests run it
// on their real server with a key store of their choice.
package encryptiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/projection"
)

// Backend returns an event store and a key store for one test, both empty
// and cleaned up when it ends.
type Backend func(t *testing.T) (eventsource.Store, encryption.KeyStore)

// Customer is the aggregate the suite saves, in streams "customer-<id>".
type Customer struct {
	ID     string
	Email  string
	Events int
}

// EmailChanged changes a customer's email, which is personal data.
type EmailChanged struct {
	eventsource.Model
	Email string
}

// On folds a customer's events.
func (c *Customer) On(e eventsource.Event) error {
	c.Events++
	switch e := e.(type) {
	case *Registered:
		c.ID, c.Email = e.ID, e.Email
	case *EmailChanged:
		c.Email = e.Email
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

// Registered starts a customer; its email is personal data.
type Registered struct {
	eventsource.Model
	CustomerID string
	Email      string
}

func registry(t *testing.T, keys encryption.KeyStore, opts ...encryption.Option) *eventsource.Registry {
	t.Helper()
	reg := eventsource.NewRegistry(encryption.NewCodec(jsoncodec.New(), keys, opts...))
	if err := reg.Bind(&Registered{}, &EmailChanged{}); err != nil {
		t.Fatal(err)
	}
	return reg
}

func checkShredded(t *testing.T, what string, err error, subject string) {
	t.Helper()
	var se *encryption.ShreddedError
	if !errors.Is(err, eventsource.ErrShredded) || !errors.As(err, &se) || se.Subject != subject {
		t.Fatalf("%s: %v, want a *ShreddedError for %q", what, err, subject)
	}
	if strings.Contains(err.Error(), "@example.com") {
		t.Fatalf("%s: error %q holds plaintext", what, err)
	}
}

// Run saves and loads through an encrypting registry on the backend's
// store, then shreds one customer and reads it back by every path.
func Run(t *testing.T, open Backend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, keys := open(t)
	reg := registry(t, keys)
	repo := eventsource.New(&Customer{}, eventsource.WithStore(store), eventsource.WithSerializer(reg), eventsource.WithStreamPrefix("customer-"))

	mctx := eventsource.ContextWithMetadata(ctx, map[string]string{"tenant": "acme"})
	for _, id := range []string{"c1", "c2"} {
		err := repo.Save(mctx,
			&Registered{Model: eventsource.Model{ID: id, Version: 1}, CustomerID: id, Email: id + "@example.com"},
			&EmailChanged{Model: eventsource.Model{ID: id, Version: 2}, Email: id + ".new@example.com"})
		if err != nil {
			t.Fatalf("Save %s: %v", id, err)
		}
	}
	for _, id := range []string{"c1", "c2"} {
		c, err := repo.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load %s: %v", id, err)
		}
		if c.Email != id+".new@example.com" || c.Events != 2 || c.ID != id {
			t.Fatalf("Load %s = %+v", id, c)
		}
	}
	// What the store holds: ciphertext, in clear only what doc.go says.
	h, err := repo.History(ctx, "c1")
	if err != nil || len(h) != 2 {
		t.Fatalf("History: %d records, %v", len(h), err)
	}
	for _, rec := range h {
		if bytes.Contains(rec.Data, []byte("@example.com")) {
			t.Fatal("stored data holds the plaintext")
		}
		if rec.Codec != "enc+json" || rec.StreamID != "customer-c1" || rec.Metadata["tenant"] != "acme" {
			t.Fatalf("record codec %q stream %q metadata %v", rec.Codec, rec.StreamID, rec.Metadata)
		}
	}
	// Metadata filters still work on the global log.
	var tagged int
	for _, err := range store.ReadAll(ctx, 0, eventsource.Filter{Metadata: map[string]string{"tenant": "acme"}}) {
		if err != nil {
			t.Fatal(err)
		}
		tagged++
	}
	if tagged != 4 {
		t.Fatalf("metadata filter found %d records, want 4", tagged)
	}

	if err := keys.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	// 1. Repository.Load.
	_, err = repo.Load(ctx, "c1")
	checkShredded(t, "Load", err, "c1")
	if c, err := repo.Load(ctx, "c2"); err != nil || c.Email != "c2.new@example.com" {
		t.Fatalf("Load c2 after shredding c1: %+v, %v", c, err)
	}
	// 2. A raw stream read decoded by the registry.
	for rec, err := range store.ReadStream(ctx, "customer-c1", 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		_, err = reg.UnmarshalEventContext(ctx, rec)
		checkShredded(t, "registry decode", err, "c1")
		_, err = reg.UnmarshalEvent(rec)
		checkShredded(t, "registry decode without context", err, "c1")
	}
	// 3. The global log through a query.
	_, err = projection.NewQuery(projection.FromCategory(store, "customer-"), 0).
		OnEvent(reg, func(n int, e eventsource.Event) (int, error) { return n + 1, nil }).
		Run(ctx)
	checkShredded(t, "query", err, "c1")
	// ... and with redaction the query runs past c1's events.
	redacting := registry(t, keys, encryption.WithRedaction())
	emails, err := projection.NewQuery(projection.FromCategory(store, "customer-"), []string{}).
		OnEvent(redacting, func(s []string, e eventsource.Event) ([]string, error) {
			switch e := e.(type) {
			case *Registered:
				return append(s, e.Email), nil
			case *EmailChanged:
				return append(s, e.Email), nil
			}
			return s, fmt.Errorf("unexpected %T", e)
		}).Run(ctx)
	if err != nil {
		t.Fatalf("redacting query: %v", err)
	}
	if want := []string{"", "", "c2@example.com", "c2.new@example.com"}; fmt.Sprint(emails) != fmt.Sprint(want) {
		t.Fatalf("redacting query saw %q, want %q", emails, want)
	}
	// 4. A projection running past the shredded events in redaction mode.
	type counts struct{ Events, Redacted int }
	var last uint64
	for rec, err := range store.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		last = rec.Position
	}
	p := projection.NewProjection("emails", store, projection.NewMemoryCheckpointStore(), counts{},
		func(s counts, rec eventsource.Record) (counts, error) {
			e, err := redacting.UnmarshalEventContext(ctx, rec)
			if err != nil {
				return s, err
			}
			s.Events++
			if e.AggregateID() == "" { // the zero value: its data is gone
				s.Redacted++
			}
			return s, nil
		}, projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	for p.Checkpoint().Position < last {
		select {
		case err := <-done:
			t.Fatalf("projection stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("projection at %d, want %d", p.Checkpoint().Position, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	<-done
	if s := p.State(); s.Events != 4 || s.Redacted != 2 {
		t.Fatalf("projection state %+v, want 4 events, 2 redacted", s)
	}
	// A shredded customer takes no new events.
	err = repo.Save(ctx, &EmailChanged{Model: eventsource.Model{ID: "c1", Version: 3}, Email: "x@example.com"})
	checkShredded(t, "Save after Delete", err, "c1")
}
