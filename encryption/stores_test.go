package encryption_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/natskeys"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/mysql"
	esnats "github.com/eventsource-go/eventsource/store/nats"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Customer is the aggregate of the store tests.
type Customer struct {
	ID     string
	Email  string
	Events int
}

type EmailChanged struct {
	eventsource.Model
	Email string
}

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

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// backend is an event store and a key store for one test, cleaned up when
// it ends.
type backend func(t *testing.T) (eventsource.Store, encryption.KeyStore)

func sqlKeys(t *testing.T, db *sql.DB, d sqlkeys.Dialect, prefix string) encryption.KeyStore {
	t.Helper()
	keys, err := sqlkeys.New(db, d, sqlkeys.WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + prefix + "encryption_keys") })
	return keys
}

func backends() map[string]backend {
	return map[string]backend{
		"Memory": func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			return memory.New(), encryption.NewMemoryKeyStore()
		},
		"SQLite": func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			path := filepath.Join(t.TempDir(), "events.db")
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			db, err := sql.Open("sqlite", sqlite.DSN(path)) // keys in the same file
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return s, sqlKeys(t, db, sqlkeys.SQLite, "es_")
		},
		"Postgres": func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			url := testenv.Postgres.URL(t)
			ctx := context.Background()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			schema := randomName("enc_t_")
			if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
			s := postgres.New(pool, postgres.WithSchema(schema))
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return s, sqlKeys(t, db, sqlkeys.Postgres, randomName("k")+"_")
		},
		"MySQL": func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			dsn := testenv.MySQL.URL(t)
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			prefix := randomName("t") + "_"
			s := mysql.New(db, mysql.WithTablePrefix(prefix))
			t.Cleanup(func() {
				s.Close()
				for _, tbl := range []string{"events", "streams", "position", "schema_migrations", "reservations"} {
					_, _ = db.Exec("DROP TABLE IF EXISTS `" + prefix + tbl + "`")
				}
			})
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s, sqlKeys(t, db, sqlkeys.MySQL, prefix) // cleanups run last first: keys table dropped before db closes
		},
		"NATS": func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			js := startNATS(t)
			s := esnats.New(js, esnats.WithStreamName(randomName("ENC_")), esnats.WithSubjectPrefix(randomName("enc")))
			t.Cleanup(func() { s.Close() })
			if err := s.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s, natskeys.New(js, natskeys.WithBucket(randomName("keys_")))
		},
	}
}

// startNATS runs a NATS server with JetStream in this process, as
// store/nats's tests do, and returns a JetStream handle on it.
func startNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats server not ready after 10s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
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

// TestStores saves and loads through an encrypting registry on every store,
// then shreds one customer and reads it back by every path.
func TestStores(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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
			p := projection.NewProjection("emails", store, projection.NewMemoryStore(), counts{},
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
		})
	}
}
