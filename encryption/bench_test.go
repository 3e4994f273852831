package encryption_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// BenchmarkCodec measures encryption overhead per event: the plain JSON codec
// (the baseline) beside the encrypting one, with keys in memory and in
// SQLite (one key read per decode, no cache).
func BenchmarkCodec(b *testing.B) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(b.TempDir(), "keys.db")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	sqlKeys, err := sqlkeys.New(db, sqlkeys.SQLite)
	if err != nil {
		b.Fatal(err)
	}
	codecs := []struct {
		name  string
		codec eventsource.Codec
	}{
		{"json", jsoncodec.New()},
		{"enc+json/memory", encryption.NewCodec(jsoncodec.New(), encryption.NewMemoryKeyStore())},
		{"enc+json/sqlite", encryption.NewCodec(jsoncodec.New(), sqlKeys)},
	}
	e := event("agg-1")
	for _, c := range codecs {
		marshal := func() ([]byte, error) {
			if cc, ok := c.codec.(eventsource.ContextCodec); ok {
				return cc.MarshalContext(ctx, e)
			}
			return c.codec.Marshal(e)
		}
		data, err := marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/Marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var got Registered
				if err := c.codec.Unmarshal(data, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
