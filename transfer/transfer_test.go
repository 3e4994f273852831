package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/transfer"
)

// fill appends a mix that an export must carry byte for byte: compact
// JSON, JSON with spaces and with <, > and &, binary data, Unicode and
// empty metadata values, a stream longer than one import batch, and
// streams interleaved in the log.
func fill(t *testing.T, s eventsource.Store) {
	t.Helper()
	ctx := context.Background()
	app := func(stream string, recs ...eventsource.Record) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventsource.Any, recs); err != nil {
			t.Fatal(err)
		}
	}
	app("account-1", eventsource.Record{Type: "Opened", Codec: "json", Data: []byte(`{"owner":"ann"}`), Metadata: map[string]string{"user": "ünïcode ✓", "empty": ""}})
	app("account-2", eventsource.Record{Type: "Opened", Codec: "json", Data: []byte("{ \"owner\" : \"bob\" }\n")})
	app("account-1", eventsource.Record{Type: "Noted", Codec: "json", Data: []byte(`{"note":"<b>&amp;</b>"}`)},
		eventsource.Record{Type: "Blob", Codec: "gob", Data: []byte{0x00, 0xff, 0x10, '"', '\n'}})
	app("order-9", eventsource.Record{Type: "Placed", Codec: "json", Data: []byte(`[1,2,3]`)})
	long := make([]eventsource.Record, 700)
	for i := range long {
		long[i] = eventsource.Record{Type: "Tick", Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	app("clock-1", long[:350]...)
	app("clock-1", long[350:]...)
	app("account-2", eventsource.Record{Type: "Closed", Codec: "json", Data: []byte(`{}`)})
}

// canonical is an export without what the target assigns (positions and
// times), to compare stores.
func canonical(t *testing.T, s eventsource.Store, sel transfer.Selection) []string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := transfer.Export(context.Background(), s, &buf, sel, nil); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range readBack(t, s, sel) {
		rec.Position, rec.RecordedAt = 0, rec.RecordedAt.UTC().Truncate(0)
		out = append(out, fmt.Sprintf("%s|%d|%s|%s|%s|%x|%v", rec.StreamID, rec.Version, rec.EventID, rec.Type, rec.Codec, rec.Data, rec.Metadata))
	}
	return out
}

func readBack(t *testing.T, s eventsource.Store, sel transfer.Selection) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadAll(context.Background(), 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if sel.Category == "" || strings.HasPrefix(r.StreamID, sel.Category) {
			out = append(out, r)
		}
	}
	return out
}

func stores(t *testing.T) map[string]func() eventsource.Store {
	return map[string]func() eventsource.Store{
		"memory": func() eventsource.Store { return memory.New() },
		"sqlite": func() eventsource.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for from, newFrom := range stores(t) {
		for to, newTo := range stores(t) {
			t.Run(from+"-"+to, func(t *testing.T) {
				src, dst := newFrom(), newTo()
				fill(t, src)
				var file bytes.Buffer
				n, err := transfer.Export(ctx, src, &file, transfer.Selection{}, nil)
				if err != nil || n != 706 {
					t.Fatalf("export: %d, %v", n, err)
				}
				if got, err := transfer.Import(ctx, dst, bytes.NewReader(file.Bytes()), nil); err != nil || got != n {
					t.Fatalf("import: %d of %d, %v", got, n, err)
				}
				want, got := canonical(t, src, transfer.Selection{}), canonical(t, dst, transfer.Selection{})
				if strings.Join(want, "\n") != strings.Join(got, "\n") {
					t.Fatalf("the target differs from the source:\n%s", firstDiff(want, got))
				}
				// Again, whole: nothing changes.
				if _, err := transfer.Import(ctx, dst, bytes.NewReader(file.Bytes()), nil); err != nil {
					t.Fatalf("import again: %v", err)
				}
				if again := canonical(t, dst, transfer.Selection{}); len(again) != len(want) {
					t.Fatalf("after importing twice the target holds %d records, want %d", len(again), len(want))
				}
			})
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("record %d:\n  source %s\n  target %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("%d records in the source, %d in the target", len(a), len(b))
}

// A file imported in part (an import that stopped) and then in whole ends
// with each record once, whatever the batches were.
func TestImportResumes(t *testing.T) {
	ctx := context.Background()
	src, dst := memory.New(), memory.New()
	fill(t, src)
	var file bytes.Buffer
	if _, err := transfer.Export(ctx, src, &file, transfer.Selection{}, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(file.String(), "\n")
	part := strings.Join(lines[:420], "") // stops inside clock-1's second append
	if n, err := transfer.Import(ctx, dst, strings.NewReader(part), nil); err != nil || n != 420 {
		t.Fatalf("partial import: %d, %v", n, err)
	}
	if n, err := transfer.Import(ctx, dst, bytes.NewReader(file.Bytes()), nil); err != nil || n != 706 {
		t.Fatalf("whole import after the part: %d, %v", n, err)
	}
	if got, want := canonical(t, dst, transfer.Selection{}), canonical(t, src, transfer.Selection{}); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatal(firstDiff(want, got))
	}
}

func TestImportErrors(t *testing.T) {
	ctx := context.Background()
	src, dst := memory.New(), memory.New()
	fill(t, src)
	var file bytes.Buffer
	if _, err := transfer.Export(ctx, src, &file, transfer.Selection{Category: "account-"}, nil); err != nil {
		t.Fatal(err)
	}
	// The target's account-2 holds another event at version 1.
	if _, err := dst.Append(ctx, "account-2", eventsource.NoStream, []eventsource.Record{{Type: "Other"}}); err != nil {
		t.Fatal(err)
	}
	n, err := transfer.Import(ctx, dst, bytes.NewReader(file.Bytes()), nil)
	var ie *transfer.ImportError
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ie) || !errors.As(err, &ce) || ie.Line != 2 || ie.Stream != "account-2" || ie.Version != 1 || n != 1 {
		t.Fatalf("import over another event: %d, %v; want an *ImportError at line 2 wrapping a conflict", n, err)
	}
	for _, bad := range []string{"not json\n", `{"stream":"s-1","type":"T","version":1}` + "\n", `{"stream":"s-1","type":"T","version":0,"event_id":"e"}` + "\n",
		`{"stream":"s-1","type":"T","version":1,"event_id":"e","data":{},"data_base64":"AA=="}` + "\n"} {
		_, err := transfer.Import(ctx, memory.New(), strings.NewReader(`{"stream":"ok-1","type":"T","version":1,"event_id":"e0"}`+"\n"+bad), nil)
		if !errors.Is(err, transfer.ErrBadLine) || !errors.As(err, &ie) || ie.Line != 2 {
			t.Errorf("import of %q: %v, want ErrBadLine at line 2", bad, err)
		}
	}
}

func TestExportSelection(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	fill(t, s)
	count := func(sel transfer.Selection) int {
		var buf bytes.Buffer
		n, err := transfer.Export(ctx, s, &buf, sel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(buf.String(), "\n"); lines != n {
			t.Fatalf("%d lines for %d records", lines, n)
		}
		return n
	}
	if n := count(transfer.Selection{Stream: "account-1"}); n != 3 {
		t.Errorf("stream account-1: %d records, want 3", n)
	}
	if n := count(transfer.Selection{Category: "account-"}); n != 5 {
		t.Errorf("category account-: %d records, want 5", n)
	}
	if n := count(transfer.Selection{From: 700}); n != 7 {
		t.Errorf("from position 700: %d records, want 7", n)
	}
	var buf bytes.Buffer
	if _, err := transfer.Export(ctx, s, &buf, transfer.Selection{Stream: "a-1", Category: "a-"}, nil); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Errorf("stream and category: %v", err)
	}
	// What a line looks like: JSON data as JSON, the rest as base64.
	buf.Reset()
	if _, err := transfer.Export(ctx, s, &buf, transfer.Selection{Stream: "account-1"}, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.Contains(lines[0], `"data":{"owner":"ann"}`) || !strings.Contains(lines[1], `"data_base64":`) || !strings.Contains(lines[2], `"data_base64":"AP8QIgo="`) {
		t.Fatalf("export:\n%s", buf.String())
	}
}

// Copy follows one store into another, resumes from its checkpoint, and
// picks up what was appended since.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	dst, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	fill(t, src)
	var saved []uint64
	last, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{Checkpoint: func(p uint64) error { saved = append(saved, p); return nil }})
	if err != nil || last != 706 || len(saved) < 5 || saved[len(saved)-1] != 706 {
		t.Fatalf("copy: last %d, checkpoints %v, %v", last, saved, err)
	}
	if got, want := canonical(t, dst, transfer.Selection{}), canonical(t, src, transfer.Selection{}); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatal(firstDiff(want, got))
	}
	if _, err := src.Append(ctx, "account-9", eventsource.Any, []eventsource.Record{{Type: "Opened", Codec: "json", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	last, err = transfer.Copy(ctx, src, dst, transfer.CopyOptions{From: last + 1})
	if err != nil || last != 707 || len(canonical(t, dst, transfer.Selection{})) != 707 {
		t.Fatalf("copy of what came since: last %d, %v", last, err)
	}
	// From the start again: nothing changes.
	if last, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{}); err != nil || last != 707 || len(canonical(t, dst, transfer.Selection{})) != 707 {
		t.Fatalf("copy from the start again: %d, %v", last, err)
	}
}
