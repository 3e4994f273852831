package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/cli"
	"github.com/eventsource-go/eventsource/internal/testenv"
)

// run runs the tool in process and returns what it printed.
func run(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := cli.New()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestAppendReadList(t *testing.T) {
	ctx := context.Background()
	store := "sqlite://" + filepath.Join(t.TempDir(), "cli.db")
	out, _, err := run(t, ctx, "-s", store, "append", "account-1", "--type", "Opened", "--data", `{"Owner":"ann"}`, "--meta", "teller=7", "--expected", "no-stream")
	if err != nil || !strings.Contains(out, "account-1 version 1") {
		t.Fatalf("append: %q, %v", out, err)
	}
	if _, _, err := run(t, ctx, "-s", store, "append", "account-1", "-t", "Deposited", "-d", `{"Amount":5}`, "-e", "1", "--id", "dep-1"); err != nil {
		t.Fatal(err)
	}
	// Repeating an append with the same event ID is a safe retry.
	if out, _, err := run(t, ctx, "-s", store, "append", "account-1", "-t", "Deposited", "-d", `{"Amount":5}`, "-e", "1", "--id", "dep-1"); err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("retried append: %q, %v", out, err)
	}
	_, _, err = run(t, ctx, "-s", store, "append", "account-1", "-t", "Deposited", "-e", "1")
	if !errors.Is(err, eventsource.ErrConcurrency) {
		t.Fatalf("stale append: %v, want ErrConcurrency", err)
	}
	if _, _, err := run(t, ctx, "-s", store, "append", "account-2", "-t", "Opened"); err != nil {
		t.Fatal(err)
	}

	out, _, err = run(t, ctx, "-s", store, "read", "account-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("read printed %d lines: %q", len(lines), out)
	}
	var rec struct {
		Stream   string
		Version  int64
		Type     string
		Data     map[string]any
		Metadata map[string]string
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.Type != "Opened" || rec.Data["Owner"] != "ann" || rec.Metadata["teller"] != "7" {
		t.Fatalf("first record: %+v, %v", rec, err)
	}
	if out, _, err := run(t, ctx, "-s", store, "read", "account-1", "--from", "2"); err != nil || !strings.Contains(out, `v2 @2 account-1 Deposited {"Amount":5}`) {
		t.Fatalf("read --from 2: %q, %v", out, err)
	}
	if _, _, err := run(t, ctx, "-s", store, "read", "nobody"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("read of a missing stream: %v", err)
	}

	out, _, err = run(t, ctx, "-s", store, "streams", "list", "--prefix", "account-")
	if err != nil || !strings.Contains(out, "account-1") || !strings.Contains(out, "account-2") {
		t.Fatalf("streams list: %q, %v", out, err)
	}
}

func TestTailFollowsLive(t *testing.T) {
	store := "sqlite://" + filepath.Join(t.TempDir(), "tail.db")
	if _, _, err := run(t, context.Background(), "-s", store, "append", "a-1", "-t", "Old", "-m", "k=v"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() {
		time.Sleep(500 * time.Millisecond)
		run(t, context.Background(), "-s", store, "append", "a-2", "-t", "New", "-m", "k=v")
		run(t, context.Background(), "-s", store, "append", "a-3", "-t", "New", "-m", "k=other")
	}()
	out, errOut, err := run(t, ctx, "-s", store, "tail", "--where", "k=v")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "a-1 Old") || !strings.Contains(out, "a-2 New") || strings.Contains(out, "a-3") {
		t.Fatalf("tail printed %q", out)
	}
	if !strings.Contains(errOut, "caught up") {
		t.Fatalf("tail did not say it caught up: %q", errOut)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	store := "sqlite://" + filepath.Join(t.TempDir(), "bad.db")
	cases := [][]string{
		{"-s", "bogus://x", "streams", "list"},
		{"-s", "sqlite://", "streams", "list"},
		{"-s", store, "append", "s", "--data", "{}"},
		{"-s", store, "append", "s", "-t", "T", "--data", "{not json"},
		{"-s", store, "append", "s", "-t", "T", "--expected", "-3"},
		{"-s", store, "append", "s", "-t", "T", "--meta", "novalue"},
		{"-s", store, "append", "", "-t", "T"},
		{"-s", store, "read"},
		{"-s", store, "tail", "--where", "=x"},
	}
	for _, args := range cases {
		if _, _, err := run(t, ctx, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if out, _, err := run(t, ctx, "version"); err != nil || !strings.HasPrefix(out, "eventsource ") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

// TestDynamoDBTable creates a table with the CLI against dynalite, uses it
// as a store, and deletes it.
func TestDynamoDBTable(t *testing.T) {
	endpoint := testenv.DynamoDB.URL(t)
	ctx := context.Background()
	name := "cli-" + strings.ReplaceAll(eventsource.NewEventID()[24:], "-", "")
	out, _, err := run(t, ctx, "dynamodb", "create-table", "--name", name, "--endpoint", endpoint, "--rcu", "5", "--wcu", "5")
	if err != nil || !strings.Contains(out, "is active") {
		t.Fatalf("create-table: %q, %v", out, err)
	}
	store := "dynamodb://" + name + "?endpoint=" + url.QueryEscape(endpoint)
	if _, _, err := run(t, ctx, "-s", store, "append", "account-1", "-t", "Opened", "-d", `{"Owner":"ann"}`); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, ctx, "-s", store, "read", "account-1"); err != nil || !strings.Contains(out, "Opened") {
		t.Fatalf("read from DynamoDB: %q, %v", out, err)
	}
	if _, _, err := run(t, ctx, "dynamodb", "create-table", "--name", name, "--endpoint", endpoint); err == nil {
		t.Fatal("creating an existing table succeeded")
	}
	out, _, err = run(t, ctx, "dynamodb", "delete-table", "--name", name, "--endpoint", endpoint)
	if err != nil || !strings.Contains(out, "is gone") {
		t.Fatalf("delete-table: %q, %v", out, err)
	}
	if _, _, err := run(t, ctx, "dynamodb", "create-table", "--endpoint", endpoint); err == nil {
		t.Fatal("create-table without --name succeeded")
	}
}
