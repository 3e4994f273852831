package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	esnats "github.com/eventsource-go/eventsource/store/nats"
	"github.com/eventsource-go/eventsource/store/storetest"
)

// startServer runs a NATS server with JetStream in this process, storing in
// dir; it is shut down when t ends.
func startServer(t testing.TB, dir string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats server not ready after 10s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// server for the package's tests: one in-process server shared by the
// tests of one top-level test, and a connection to it.
type target struct {
	url string
	nc  *natsgo.Conn
	js  jetstream.JetStream
}

func connect(t testing.TB, url string) target {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return target{url: url, nc: nc, js: js}
}

// targets returns the servers to test against, by name: an in-process
// server always, and ES_TEST_NATS_URL's when that is set.
func targets(t *testing.T) map[string]func(t *testing.T) target {
	out := map[string]func(t *testing.T) target{
		"InProcess": func(t *testing.T) target {
			return connect(t, startServer(t, t.TempDir()).ClientURL())
		},
	}
	out["Server"] = func(t *testing.T) target {
		if os.Getenv(testenv.NATS.Env) == "" {
			t.Skipf("set %s to test against a NATS server (2.9 or later, JetStream on)", testenv.NATS.Env)
		}
		return connect(t, testenv.NATS.URL(t))
	}
	return out
}

func testenvURL() string { return os.Getenv(testenv.NATS.Env) }

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newStore returns a store on its own streams and subject prefix, deleted
// when t ends.
func newStore(t testing.TB, tg target, opts ...esnats.Option) *esnats.Store {
	t.Helper()
	name := randomName("EST_")
	prefix := randomName("est")
	opts = append([]esnats.Option{esnats.WithStreamName(name), esnats.WithSubjectPrefix(prefix)}, opts...)
	s := esnats.New(tg.js, opts...)
	if err := s.Setup(context.Background()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		dropStreams(t, tg, name)
	})
	return s
}

// dropStreams deletes the JetStream streams of the store whose events
// stream is name.
func dropStreams(t testing.TB, tg target, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{name, name + "_IDS", name + "_META", name + "_SNAPSHOTS"} {
		if err := tg.js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", n, err)
		}
	}
}

func TestConformance(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tg := tgt(t)
			storetest.Run(t, storetest.Features{
				Notify: true, Head: true, ListStreams: true, DeleteStream: true,
				Snapshots: true, Lifecycle: true, Scavenge: true, CommitHook: true,
			}, func(t *testing.T) eventsource.Store {
				return newStore(t, tg)
			})
			t.Run("LiveSubscriber", func(t *testing.T) {
				t.Parallel()
				projectiontest.LiveSubscriber(t, newStore(t, tg), projectiontest.SubscriptionOptions{CommitHook: true})
			})
		})
	}
}

// TestLimits: one append fills the server's max_payload; the default limits
// cover the portable ones, and WithMaxDataSize sets the data limit (the
// conformance suite tests the defaults).
func TestLimits(t *testing.T) {
	tg := targets(t)["InProcess"](t)
	l, p := newStore(t, tg).Limits(), eventsource.PortableLimits()
	if !l.Covers(p) {
		t.Fatalf("default limits %+v do not cover the portable %+v", l, p)
	}
	if want := int(tg.nc.MaxPayload()) - 526; l.MaxAppendBytes != want {
		t.Fatalf("MaxAppendBytes %d, want max_payload less 526: %d", l.MaxAppendBytes, want)
	}
	s := newStore(t, tg, esnats.WithMaxDataSize(100))
	if n := s.Limits().MaxDataBytes; n != 100 {
		t.Fatalf("WithMaxDataSize(100): MaxDataBytes %d", n)
	}
	if _, err := s.Append(context.Background(), "s", eventsource.Any, []eventsource.Record{{Type: "T", Data: make([]byte, 101)}}); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("101 bytes of data: %v, want ErrTooLarge", err)
	}
}
