package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
)

// TestRun: the v1 stream loads into today's types, through the upcasters
// only, and after the truncation from the snapshot.
func TestRun(t *testing.T) {
	out := capture(t, func() error { return run(context.Background(), filepath.Join(t.TempDir(), "evolve.db")) })
	for _, want := range []string{
		`stored by last year's code: UserSignedUp (codec json) {"ID":"ann","Name":"Ann Lee"}`,
		"loaded by today's code: Ann Lee <ann@home.example> after 3 changes",
		"its first event decodes as *main.UserCreated",
		"(3 removed): 1 event left, loaded Ann Lee <ann@home.example> after 3 changes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestFailsWithoutUpcasters: without the split step, the old record is a
// typed schema error naming its versions, not a UserCreated with empty
// fields; without the rename, its type is unknown.
func TestFailsWithoutUpcasters(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	if err := writeLastYear(ctx, store); err != nil {
		t.Fatal(err)
	}
	renamedOnly := eventsource.NewRegistry(nil)
	renamedOnly.Bind(&UserCreated{}, &EmailChanged{})
	if err := renamedOnly.RenameType("UserSignedUp", 1, "UserCreated"); err != nil {
		t.Fatal(err)
	}
	_, err := eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithSerializer(renamedOnly)).Load(ctx, "ann")
	var se *eventsource.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, eventsource.ErrSchema) || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("Load without the split step: %v, want a *SchemaError naming schema version 2", err)
	}
	bare := eventsource.NewRegistry(nil)
	bare.Bind(&UserCreated{}, &EmailChanged{})
	_, err = eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithSerializer(bare)).Load(ctx, "ann")
	if !errors.Is(err, eventsource.ErrUnknownEventType) {
		t.Fatalf("Load without the rename: %v, want ErrUnknownEventType", err)
	}
}

func capture(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	err = fn()
	os.Stdout = stdout
	w.Close()
	out := <-done
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}
