package cli_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/storeurl"
)

// storeURLs returns a new, empty store of each kind the tool opens by URL,
// each removed when t ends.
func storeURLs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "events.db") },
		"postgres": func(t *testing.T) string {
			pg := testenv.Postgres.URL(t)
			schema := testenv.Name("cli_tr_")
			t.Cleanup(func() { dropPostgresSchema(pg, schema) })
			return pg + "&schema=" + schema
		},
		"mysql": func(t *testing.T) string {
			dsn := testenv.MySQL.URL(t)
			prefix := testenv.Name("cli_tr_") + "_"
			t.Cleanup(func() { dropMySQLTables(dsn, prefix) })
			return "mysql://" + strings.NewReplacer("tcp(", "", ")", "").Replace(dsn) + "?prefix=" + prefix
		},
		"nats": func(t *testing.T) string {
			stream := strings.ToUpper(testenv.Name("CLI_TR_"))
			return testenv.NATS.URL(t) + "?stream=" + stream + "&subject=" + strings.ToLower(stream)
		},
		"dynamodb": func(t *testing.T) string {
			return "dynamodb://cli-tr-" + testenv.Name("") + "?create=true&endpoint=" + url.QueryEscape(testenv.DynamoDB.URL(t))
		},
	}
}

// fillURL appends a mix of records an export must carry byte for byte.
func fillURL(t *testing.T, u string) {
	t.Helper()
	ctx := context.Background()
	s, err := storeurl.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	app := func(stream string, recs ...eventsource.Record) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventsource.Any, recs); err != nil {
			t.Fatal(err)
		}
	}
	app("account-1", eventsource.Record{Type: "Opened", Codec: "json", Data: []byte(`{"owner":"ann"}`), Metadata: map[string]string{"user": "ünïcode ✓", "tenant": "t-1"}})
	app("account-2", eventsource.Record{Type: "Opened", Codec: "json", Data: []byte("{ \"owner\" : \"bob\" }")})
	app("account-1", eventsource.Record{Type: "Noted", Codec: "json", Data: []byte(`{"note":"<b>&amp;</b>"}`)},
		eventsource.Record{Type: "Blob", Codec: "gob", Data: []byte{0x00, 0xff, 0x10, '"', '\n'}})
	ticks := make([]eventsource.Record, 30)
	for i := range ticks {
		ticks[i] = eventsource.Record{Type: "Tick", Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	app("clock-1", ticks...)
	app("account-2", eventsource.Record{Type: "Closed", Codec: "json", Data: []byte(`{}`)})
}

// contents is every record of the store at u, without positions and times.
func contents(t *testing.T, u string) string {
	t.Helper()
	ctx := context.Background()
	s, err := storeurl.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []string
	for r, err := range s.ReadAll(ctx, 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%d|%s|%s|%s|%x|%v", r.StreamID, r.Version, r.EventID, r.Type, r.Codec, r.Data, r.Metadata))
	}
	return strings.Join(out, "\n")
}

// export and import with the tool, from every store to every store: the
// target holds the same records (IDs, versions, types, codecs, data and
// metadata, byte for byte), and importing the file again changes nothing.
func TestExportImportEveryPair(t *testing.T) {
	ctx := context.Background()
	kinds := storeURLs(t)
	for from, newFrom := range kinds {
		t.Run(from, func(t *testing.T) {
			src := newFrom(t)
			fillURL(t, src)
			want := contents(t, src)
			file := filepath.Join(t.TempDir(), "export.ndjson")
			if _, errOut, err := run(t, ctx, "-s", src, "export", "--output", file); err != nil || !strings.Contains(errOut, "35 records exported") {
				t.Fatalf("export: %q, %v", errOut, err)
			}
			for to, newTo := range kinds {
				t.Run(to, func(t *testing.T) {
					dst := newTo(t)
					for round := range 2 {
						if _, errOut, err := run(t, ctx, "-s", dst, "import", file); err != nil || !strings.Contains(errOut, "35 records imported") {
							t.Fatalf("import %d: %q, %v", round+1, errOut, err)
						}
						if got := contents(t, dst); got != want {
							t.Fatalf("after import %d the %s store holds\n%s\nwant\n%s", round+1, to, got, want)
						}
					}
				})
			}
		})
	}
}

// The tool's import stops at a conflicting stream with exit code 4 and
// names the line; export checks its flags.
func TestImportConflict(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := "sqlite://"+filepath.Join(dir, "a.db"), "sqlite://"+filepath.Join(dir, "b.db")
	fillURL(t, src)
	file := filepath.Join(dir, "x.ndjson")
	if _, _, err := run(t, ctx, "-s", src, "export", "--category", "account-", "-o", file); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, ctx, "-s", dst, "append", "account-2", "-t", "Other"); err != nil {
		t.Fatal(err)
	}
	r := tool(t, ctx, "", "-s", dst, "import", file)
	if r.code != 4 || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stderr, "account-2") {
		t.Fatalf("import over another event: exit %d, %q", r.code, r.stderr)
	}
	if r := tool(t, ctx, "", "-s", src, "export", "--stream", "a-1", "--category", "a-"); r.code != 2 {
		t.Fatalf("export --stream --category: exit %d", r.code)
	}
	if r := tool(t, ctx, "", "-s", dst, "import", filepath.Join(dir, "missing.ndjson")); r.code != 2 {
		t.Fatalf("import of a missing file: exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}
