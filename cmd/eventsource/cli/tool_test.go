package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource/cmd/eventsource/cli"
	"github.com/eventsource-go/eventsource/internal/testenv"
	esdynamodb "github.com/eventsource-go/eventsource/store/dynamodb"
)

// result is what a run of the tool left behind, as a shell script sees it.
type result struct {
	code           int
	stdout, stderr string
}

// tool runs the command-line tool in process with stdin as its standard
// input.
func tool(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	code := cli.Run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// syncBuffer is a bytes.Buffer safe for the writes of a running tail and
// the reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// wantFail checks that r failed with exit code code and said why in one line.
func wantFail(t *testing.T, args []string, r result, code int, says ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%v: exit code %d, want %d (stderr %q)", args, r.code, code, r.stderr)
	}
	if lines := strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") + 1; lines != 1 || !strings.HasPrefix(r.stderr, "eventsource: ") {
		t.Errorf("%v: stderr is %d lines, want one \"eventsource: …\" line: %q", args, lines, r.stderr)
	}
	for _, s := range says {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("%v: stderr %q does not say %q", args, r.stderr, s)
		}
	}
}

func sqliteURL(t *testing.T) (url, path string) {
	path = filepath.Join(t.TempDir(), "events.db")
	return "sqlite://" + path, path
}

// Item 5: an unknown subcommand is a usage error, not help and success.
func TestUnknownSubcommand(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"streams", "lisst"},
		{"dynamodb", "frob"},
		{"frob"},
		{"streams", "list", "extra"},
	} {
		r := tool(t, ctx, "", args...)
		wantFail(t, args, r, 2, "unknown command", fmt.Sprintf("%q", args[len(args)-1]))
		if r.stdout != "" {
			t.Errorf("%v printed %q on stdout", args, r.stdout)
		}
	}
	if r := tool(t, ctx, "", "streams", "lisst"); !strings.Contains(r.stderr, `did you mean "list"`) {
		t.Errorf("no suggestion for a typo: %q", r.stderr)
	}
	// A group named on its own still shows its help.
	if r := tool(t, ctx, "", "streams"); r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("streams: %d %q", r.code, r.stdout)
	}
}

// Item 6 (SQLite): read, tail and streams list neither create a file nor
// tables in an empty one, and say what is missing and how to create it.
func TestReadOnlyCommandsCreateNoSQLiteStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, path := sqliteURL(t)
	readOnly := [][]string{{"read", "s"}, {"tail"}, {"tail", "--from-end"}, {"streams", "list"}}
	for _, args := range readOnly {
		args = append([]string{"-s", store}, args...)
		r := tool(t, ctx, "", args...)
		wantFail(t, args, r, 3, path, "does not exist", "eventsource append")
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%v created %s (%v)", args, path, err)
		}
	}
	// An empty file (not yet a store) stays empty.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range readOnly {
		args = append([]string{"-s", store}, args...)
		wantFail(t, args, tool(t, ctx, "", args...), 3, path, "es_")
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was written to: %v, %v", fi, err)
	}
	// Once an append has made the store, they work.
	if r := tool(t, ctx, "", "-s", store, "append", "s", "-t", "T"); r.code != 0 {
		t.Fatalf("append: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "streams", "list"); r.code != 0 || !strings.Contains(r.stdout, "s ") {
		t.Fatalf("streams list: %+v", r)
	}
}

// Item 6 on the servers: no tables, schema, JetStream stream or DynamoDB
// table appears, and the error is "not found".
func TestReadOnlyCommandsCreateNoServerStore(t *testing.T) {
	readOnly := [][]string{{"read", "s"}, {"tail", "--from-end"}, {"streams", "list"}}
	run := func(t *testing.T, store string, says ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, args := range readOnly {
			args = append([]string{"-s", store}, args...)
			wantFail(t, args, tool(t, ctx, "", args...), 3, says...)
		}
	}
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.Postgres.URL(t)
		schema := testenv.Name("cli_ro_")
		t.Cleanup(func() { dropPostgresSchema(pg, schema) })
		run(t, pg+"&schema="+schema, schema, "does not exist", "eventsource append")
		conn, err := pgx.Connect(context.Background(), pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
			t.Fatalf("schema %s was created (%d, %v)", schema, n, err)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		dsn := testenv.MySQL.URL(t) // root@tcp(127.0.0.1:3306)/test
		prefix := testenv.Name("cli_ro_") + "_"
		t.Cleanup(func() { dropMySQLTables(dsn, prefix) })
		run(t, "mysql://"+strings.NewReplacer("tcp(", "", ")", "").Replace(dsn)+"?prefix="+prefix, prefix, "does not exist", "eventsource append")
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE ?", prefix+"%").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d tables %s* were created (%v)", n, prefix, err)
		}
	})
	t.Run("nats", func(t *testing.T) {
		u := testenv.NATS.URL(t)
		stream := strings.ToUpper(testenv.Name("CLI_RO_"))
		run(t, u+"?stream="+stream+"&subject="+strings.ToLower(stream), stream, "does not exist", "eventsource append")
		nc, err := natsgo.Connect(u)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for _, name := range []string{stream, stream + "_IDS"} {
			if _, err := js.Stream(context.Background(), name); err == nil {
				t.Errorf("JetStream stream %s was created", name)
				js.DeleteStream(context.Background(), name)
			}
		}
	})
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := testenv.DynamoDB.URL(t)
		table := "cli-ro-" + testenv.Name("")
		// create=true is for commands that write; read-only ones create nothing.
		run(t, "dynamodb://"+table+"?create=true&endpoint="+url.QueryEscape(endpoint), table, "eventsource dynamodb create-table --name "+table, "create=true")
		client, err := esdynamodb.NewClient(context.Background(), endpoint, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.DescribeTable(context.Background(), &awsdynamodb.DescribeTableInput{TableName: aws.String(table)}); err == nil {
			t.Errorf("table %s was created", table)
			esdynamodb.DeleteTable(context.Background(), client, table)
		}
	})
}

// Item 7: a misspelt URL parameter is refused, naming the known ones.
func TestUnknownURLParameter(t *testing.T) {
	store, _ := sqliteURL(t)
	args := []string{"-s", store + "?prefx=app_", "append", "s", "-t", "T"}
	wantFail(t, args, tool(t, context.Background(), "", args...), 2, `"prefx"`, "prefix")
	args = []string{"-s", "nats://127.0.0.1:1?strem=X", "streams", "list"}
	wantFail(t, args, tool(t, context.Background(), "", args...), 2, `"strem"`, "stream, subject")
}

// Item 8: --data @file and --data - (stdin), with an event of 200 KB.
func TestAppendDataFromFileAndStdin(t *testing.T) {
	ctx := context.Background()
	store, _ := sqliteURL(t)
	big := `{"Blob":"` + strings.Repeat("x", 200<<10) + `"}`
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(big+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := tool(t, ctx, "", "-s", store, "append", "big", "-t", "Big", "--data", "@"+file); r.code != 0 {
		t.Fatalf("append --data @file: %+v", r)
	}
	if r := tool(t, ctx, `{"From":"stdin"}`, "-s", store, "append", "big", "-t", "Small", "--data", "-"); r.code != 0 {
		t.Fatalf("append --data -: %+v", r)
	}
	r := tool(t, ctx, "", "-s", store, "read", "big", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("read: code %d, %d lines, stderr %q", r.code, len(lines), r.stderr)
	}
	var first, second struct{ Data json.RawMessage }
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if string(first.Data) != big || string(second.Data) != `{"From":"stdin"}` {
		t.Fatalf("read back %d and %q", len(first.Data), second.Data)
	}
	for _, c := range []struct {
		data string
		says []string
	}{
		{"@" + filepath.Join(t.TempDir(), "missing.json"), []string{"missing.json"}},
		{"@" + writeFile(t, "{\n  \"a\": 1,\n  oops\n}\n"), []string{"not valid JSON", "line 3"}},
	} {
		args := []string{"-s", store, "append", "big", "-t", "T", "--data", c.data}
		wantFail(t, args, tool(t, ctx, "", args...), 2, c.says...)
	}
}

func writeFile(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Item 9: exit codes a script can branch on, documented in --help.
func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	store, _ := sqliteURL(t)
	if r := tool(t, ctx, "", "-s", store, "append", "acct", "-t", "Opened"); r.code != 0 {
		t.Fatalf("append: %+v", r)
	}
	for _, c := range []struct {
		code int
		args []string
	}{
		{2, []string{"--bogus"}},
		{2, []string{"-s", store, "read"}},
		{2, []string{"-s", store, "read", "acct", "--from", "2", "--to", "1"}},
		{2, []string{"-s", store, "read", "acct", "--from", "-3"}},
		{2, []string{"-s", store, "read", "acct", "--to", "-1"}},
		{2, []string{"-s", store, "tail", "--from", "-3"}},
		{2, []string{"-s", store, "tail", "--from", "5", "--from-end"}},
		{2, []string{"-s", store, "append", "acct"}},
		{2, []string{"-s", store, "append", "acct", "-t", "T", "--data", "{not json"}},
		{2, []string{"-s", store, "append", "acct", "-t", "T", "--expected", "-3"}},
		{2, []string{"-s", store, "append", "", "-t", "T"}},
		{2, []string{"-s", "bogus://x", "streams", "list"}},
		{2, []string{"dynamodb", "create-table", "--name", "t", "--endpoint", "http://127.0.0.1:1", "--rcu", "5", "--on-demand"}},
		{2, []string{"dynamodb", "create-table", "--name", "t", "--endpoint", "http://127.0.0.1:1", "--rcu", "5"}},
		{2, []string{"dynamodb", "create-table", "--endpoint", "http://127.0.0.1:1"}},
		{3, []string{"-s", store, "read", "nobody"}},
		{3, []string{"-s", store, "read", "acct", "--from", "5"}},
		{4, []string{"-s", store, "append", "acct", "-t", "T", "--expected", "5"}},
		{4, []string{"-s", store, "append", "acct", "-t", "T", "--expected", "no-stream"}},
		{1, []string{"-s", "postgres://nobody@127.0.0.1:1/db?sslmode=disable", "streams", "list"}},
	} {
		wantFail(t, c.args, tool(t, ctx, "", c.args...), c.code)
	}
	help := tool(t, ctx, "", "--help").stdout
	for _, s := range []string{"Exit codes", "0 ", "1 ", "2 ", "3 ", "4 ", "5 "} {
		if !strings.Contains(help, s) {
			t.Errorf("--help does not document %q:\n%s", s, help)
		}
	}
}

// Item 10: an unreachable PostgreSQL is one line, about connecting, not
// migrating.
func TestConnectionErrorIsOneLine(t *testing.T) {
	for _, store := range []string{
		"postgres://postgres@127.0.0.1:1/test",                 // sslmode=prefer: two attempts
		"postgres://postgres@localhost:1/test?sslmode=disable", // one attempt per address
	} {
		args := []string{"-s", store, "append", "s", "-t", "T"}
		r := tool(t, context.Background(), "", args...)
		wantFail(t, args, r, 1, "connect", "127.0.0.1:1")
		if strings.Contains(r.stderr, "migrate") {
			t.Errorf("%v: a connection failure is labelled migrate: %q", args, r.stderr)
		}
	}
}

// Item 10: tail says it caught up once, not after every live record.
func TestTailSaysCaughtUpOnce(t *testing.T) {
	store, _ := sqliteURL(t)
	if r := tool(t, context.Background(), "", "-s", store, "append", "a", "-t", "Old"); r.code != 0 {
		t.Fatal(r)
	}
	for _, args := range [][]string{{"tail", "--from-end"}, {"tail"}} {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		done := make(chan int)
		go func() {
			done <- cli.Run(ctx, append([]string{"-s", store}, args...), strings.NewReader(""), &out, &errOut)
		}()
		for i := range 3 {
			time.Sleep(300 * time.Millisecond)
			tool(t, context.Background(), "", "-s", store, "append", "a", "-t", fmt.Sprintf("New%d", i))
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "New2") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("%v: exit code %d after Ctrl-C", args, code)
		}
		if n := strings.Count(errOut.String(), "caught up"); n != 1 || !strings.Contains(out.String(), "New2") {
			t.Errorf("%v: said caught up %d times; stdout %q, stderr %q", args, n, out.String(), errOut.String())
		}
	}
}

// Item 11: messages say what to do.
func TestMessagesSayWhatToDo(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite names the path", func(t *testing.T) {
		notDB := writeFile(t, "this is not a database, it is a text file of some length\n")
		for _, args := range [][]string{
			{"-s", "sqlite://" + notDB, "append", "s", "-t", "T"},
			{"-s", "sqlite://" + notDB, "read", "s"},
			{"-s", "sqlite://" + filepath.Join(t.TempDir(), "no", "such", "dir.db"), "append", "s", "-t", "T"},
		} {
			r := tool(t, ctx, "", args...)
			wantFail(t, args, r, 1, strings.TrimPrefix(args[1], "sqlite://"))
			if strings.Contains(r.stderr, "migrate") {
				t.Errorf("%v: opening is labelled migrate: %q", args, r.stderr)
			}
		}
	})
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := testenv.DynamoDB.URL(t)
		table := "cli-msg-" + testenv.Name("")
		store := "dynamodb://" + table + "?endpoint=" + url.QueryEscape(endpoint)
		for _, args := range [][]string{{"-s", store, "append", "s", "-t", "T"}, {"-s", store, "read", "s"}} {
			wantFail(t, args, tool(t, ctx, "", args...), 3, fmt.Sprintf("table %q", table),
				"eventsource dynamodb create-table --name "+table, "create=true")
		}
		create := []string{"dynamodb", "create-table", "--name", table, "--endpoint", endpoint}
		if r := tool(t, ctx, "", create...); r.code != 0 {
			t.Fatalf("create-table: %+v", r)
		}
		t.Cleanup(func() { tool(t, ctx, "", "dynamodb", "delete-table", "--name", table, "--endpoint", endpoint) })
		r := tool(t, ctx, "", create...)
		wantFail(t, create, r, 1, fmt.Sprintf("table %q already exists", table))
		if strings.Contains(r.stderr, "ResourceInUseException") {
			t.Errorf("create-table of an existing table: %q", r.stderr)
		}
	})
}

// The drops below clean up after a regression; a passing test leaves
// nothing to drop.

func dropPostgresSchema(url, schema string) {
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(ctx)
	}
}

func dropMySQLTables(dsn, prefix string) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return
	}
	defer db.Close()
	for _, t := range []string{"events", "streams", "position", "schema_migrations", "reservations", "snapshots"} {
		db.Exec("DROP TABLE IF EXISTS `" + prefix + t + "`")
	}
}
