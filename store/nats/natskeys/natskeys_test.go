package natskeys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/keystoretest"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/nats/natskeys"
)

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(url)
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

// targets: an in-process server always, and ES_TEST_NATS_URL's (the
// machine's NATS 2.9 in CI) when that is set.
func targets() map[string]func(t *testing.T) jetstream.JetStream {
	return map[string]func(t *testing.T) jetstream.JetStream{
		"InProcess": func(t *testing.T) jetstream.JetStream {
			srv, err := server.NewServer(&server.Options{
				Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
				StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv.Start()
			if !srv.ReadyForConnections(10 * time.Second) {
				t.Fatal("nats server not ready")
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			return connect(t, srv.ClientURL())
		},
		"Server": func(t *testing.T) jetstream.JetStream {
			if os.Getenv(testenv.NATS.Env) == "" {
				t.Skipf("set %s to test against a NATS server (2.9 or later, JetStream on)", testenv.NATS.Env)
			}
			return connect(t, testenv.NATS.URL(t))
		},
	}
}

func newStore(t *testing.T, js jetstream.JetStream, opts ...natskeys.Option) *natskeys.Store {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "keys_" + hex.EncodeToString(b)
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), bucket) })
	return natskeys.New(js, append([]natskeys.Option{natskeys.WithBucket(bucket)}, opts...)...)
}

func TestConformance(t *testing.T) {
	for name, target := range targets() {
		t.Run(name, func(t *testing.T) {
			js := target(t)
			keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { return newStore(t, js) })
			kek := make([]byte, encryption.KeySize)
			_, _ = rand.Read(kek)
			m, err := encryption.NewMasterKey(kek)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("MasterKey", func(t *testing.T) {
				keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { return newStore(t, js, natskeys.WithMasterKey(m)) })
			})
		})
	}
}

// TestDeleteDropsKeyMessages checks that after Delete the bucket's stream
// holds no message with the key bytes.
func TestDeleteDropsKeyMessages(t *testing.T) {
	ctx := context.Background()
	js := targets()["InProcess"](t)
	s := newStore(t, js, natskeys.WithBucket("shred"))
	k, err := s.Current(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(ctx, "KV_shred")
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := str.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if bytes.Contains(msg.Data, k.Material) || bytes.Contains(msg.Data, []byte("keys")) {
			t.Fatalf("message %d still holds keys", seq)
		}
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want the tombstone only", info.State.Msgs)
	}
}
