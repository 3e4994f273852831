package archive_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/archive"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// buckets are the object stores the tests run on: a directory (file://)
// and S3, served in process by gofakes3 and reached through the AWS SDK.
func buckets(t *testing.T) map[string]func(t *testing.T) *blob.Bucket {
	return map[string]func(t *testing.T) *blob.Bucket{
		"file": func(t *testing.T) *blob.Bucket {
			b, err := fileblob.OpenBucket(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		"s3": func(t *testing.T) *blob.Bucket {
			backend := s3mem.New()
			srv := httptest.NewServer(gofakes3.New(backend).Server())
			t.Cleanup(srv.Close)
			if err := backend.CreateBucket("archive"); err != nil {
				t.Fatal(err)
			}
			client := s3.New(s3.Options{BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider("key", "secret", "")})
			b, err := s3blob.OpenBucket(context.Background(), client, "archive", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
	}
}

func appendN(t *testing.T, s eventsource.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		rec := eventsource.Record{Type: "Tick", Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Metadata: map[string]string{"n": fmt.Sprint(i)}}
		if i%7 == 0 {
			rec = eventsource.Record{Type: "Blob", Codec: "gob", Data: []byte{byte(i), 0x00, 0xff, '<'}}
		}
		if _, err := s.Append(context.Background(), fmt.Sprint("s-", i%13), eventsource.Any, []eventsource.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// dump is every record of s, without what a store assigns (positions,
// times).
func dump(t *testing.T, s eventsource.Store) []string {
	t.Helper()
	var out []string
	for r, err := range s.ReadAll(context.Background(), 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%d|%s|%s|%s|%x|%v", r.StreamID, r.Version, r.EventID, r.Type, r.Codec, r.Data, r.Metadata))
	}
	return out
}

func openSQLite(t *testing.T) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestArchiveAndReplay(t *testing.T) {
	ctx := context.Background()
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			o := archive.Options{Prefix: "bank/", ChunkRecords: 1000}
			src := openSQLite(t)
			appendN(t, src, 0, 2500)
			res, err := archive.Archive(ctx, src, b, o, nil)
			if err != nil || res.Chunks != 3 || res.Records != 2500 || res.From != 1 || res.To != 2500 {
				t.Fatalf("archive: %+v, %v", res, err)
			}
			// Incremental: only what came since.
			appendN(t, src, 2500, 700)
			res, err = archive.Archive(ctx, src, b, o, nil)
			if err != nil || res.Chunks != 1 || res.Records != 700 || res.From != 2501 {
				t.Fatalf("second archive: %+v, %v", res, err)
			}
			if res, err := archive.Archive(ctx, src, b, o, nil); err != nil || res.Chunks != 0 {
				t.Fatalf("archive with nothing new: %+v, %v", res, err)
			}
			m, err := archive.Verify(ctx, b, o)
			if err != nil || len(m.Chunks) != 4 || m.Records() != 3200 || m.Last() != 3200 || !strings.HasPrefix(m.Chunks[1].Key, "bank/chunks/00000000000000001001-") {
				t.Fatalf("verify: %d chunks, %d records, %v", len(m.Chunks), m.Records(), err)
			}
			// Replayed into another kind of store: the same records, byte for byte.
			dst := memory.New()
			if n, err := archive.Replay(ctx, b, o, dst, nil); err != nil || n != 3200 {
				t.Fatalf("replay: %d, %v", n, err)
			}
			want := dump(t, src)
			if got := dump(t, dst); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("replayed store differs: %d records, want %d", len(got), len(want))
			}
			if n, err := archive.Replay(ctx, b, o, dst, nil); err != nil || n != 3200 || len(dump(t, dst)) != 3200 {
				t.Fatalf("replay again: %d, %v", n, err)
			}
			// The archive read as a log, with the source's positions.
			var i uint64
			for r, err := range archive.Records(ctx, b, o) {
				if err != nil {
					t.Fatal(err)
				}
				i++
				if r.Position != i || r.RecordedAt.IsZero() {
					t.Fatalf("record %d has position %d", i, r.Position)
				}
			}
			if i != 3200 {
				t.Fatalf("Records yielded %d", i)
			}
		})
	}
}

// A corrupted chunk is found and named, and nothing of it is imported;
// the chunks before it are.
func TestCorruptChunk(t *testing.T) {
	ctx := context.Background()
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			o := archive.Options{ChunkRecords: 100}
			src := memory.New()
			appendN(t, src, 0, 300)
			if _, err := archive.Archive(ctx, src, b, o, nil); err != nil {
				t.Fatal(err)
			}
			m, _ := archive.ReadManifest(ctx, b, o)
			bad := m.Chunks[1]
			data, err := b.ReadAll(ctx, bad.Key)
			if err != nil {
				t.Fatal(err)
			}
			orig := slices.Clone(data)
			data[len(data)/2] ^= 0x01
			if err := b.WriteAll(ctx, bad.Key, data, nil); err != nil {
				t.Fatal(err)
			}
			var ce *archive.CorruptChunkError
			if _, err := archive.Verify(ctx, b, o); !errors.As(err, &ce) || ce.Key != bad.Key || !errors.Is(err, eventsource.ErrCorruptData) {
				t.Fatalf("verify: %v, want the chunk %s named", err, bad.Key)
			}
			dst := memory.New()
			n, err := archive.Replay(ctx, b, o, dst, nil)
			if !errors.As(err, &ce) || ce.Key != bad.Key || n != 100 || len(dump(t, dst)) != 100 {
				t.Fatalf("replay: %d records, %d stored, %v; want the first chunk only and the second named", n, len(dump(t, dst)), err)
			}
			// A chunk gone is corrupt too.
			if err := b.Delete(ctx, m.Chunks[2].Key); err != nil {
				t.Fatal(err)
			}
			if err := b.WriteAll(ctx, bad.Key, orig, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := archive.Verify(ctx, b, o); !errors.As(err, &ce) || ce.Key != m.Chunks[2].Key || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("verify with a chunk missing: %v", err)
			}
		})
	}
}
