// Package sqlkeystest runs the key store suite (keystoretest) on sqlkeys
// over one database, with and without a master key, and checks what the
// table holds: wrapped keys only, and no key material after Delete. The
// tests of each SQL dialect's module run it against their real server.
package sqlkeystest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/keystoretest"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
)

// Run runs the suite on db, which speaks dialect d. Each test makes its own
// table, dropped when it ends.
func Run(t *testing.T, db *sql.DB, d sqlkeys.Dialect) {
	open := func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, string) {
		t.Helper()
		prefix := randomPrefix(t)
		s, err := sqlkeys.New(db, d, append([]sqlkeys.Option{sqlkeys.WithTablePrefix(prefix)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + prefix + "encryption_keys") })
		return s, prefix
	}
	t.Run("Conformance", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { s, _ := open(t); return s })
	})
	t.Run("ConformanceMasterKey", func(t *testing.T) {
		m := masterKey(t)
		keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { s, _ := open(t, sqlkeys.WithMasterKey(m)); return s })
	})
	t.Run("MasterKeyWrapsStoredKeys", func(t *testing.T) {
		ctx := context.Background()
		s, prefix := open(t, sqlkeys.WithMasterKey(masterKey(t)))
		k, err := s.Current(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT material FROM "+prefix+"encryption_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var m []byte
			if err := rows.Scan(&m); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(m, k.Material) {
				t.Fatal("the table holds the key unwrapped")
			}
		}
		// Another master key reads nothing.
		other, err := sqlkeys.New(db, d, sqlkeys.WithTablePrefix(prefix), sqlkeys.WithMasterKey(masterKey(t)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Key(ctx, "s1", 1); !errors.Is(err, eventsource.ErrCorruptData) {
			t.Fatalf("wrong master key: %v, want ErrCorruptData", err)
		}
	})
	t.Run("DeleteRemovesRows", func(t *testing.T) {
		ctx := context.Background()
		s, prefix := open(t)
		for range 3 {
			if _, err := s.Rotate(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+prefix+"encryption_keys WHERE material IS NOT NULL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d key rows left after Delete", n)
		}
	})
}

func randomPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "k" + hex.EncodeToString(b) + "_"
}

func masterKey(t testing.TB) *encryption.MasterKey {
	t.Helper()
	kek := make([]byte, encryption.KeySize)
	_, _ = rand.Read(kek)
	m, err := encryption.NewMasterKey(kek)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
