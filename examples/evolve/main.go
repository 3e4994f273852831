// Command evolve changes an event type's shape under a live stream: events
// written by last year's code (a "UserSignedUp" with one Name field) load
// into today's UserCreated (First and Last, schema version 3) through
// upcasters, without the old Go type. Then it snapshots the aggregate and
// retires the events the snapshot covers.
//
//	go run ./examples/evolve
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Last year's events, as that code wrote them.
type userSignedUpV1 struct {
	eventsource.Model
	Name string
}

func (*userSignedUpV1) EventType() string { return "UserSignedUp" }

type EmailChanged struct {
	eventsource.Model
	Email string
}

// Today's event: renamed, the name split in two. Schema version 3: v1 was
// UserSignedUp, v2 the same under its new name.
type UserCreated struct {
	eventsource.Model
	First, Last string
}

func (*UserCreated) SchemaVersion() int { return 3 }

// User is today's aggregate.
type User struct {
	First, Last, Email string
	Changes            int
}

func (u *User) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *UserCreated:
		u.First, u.Last = e.First, e.Last
	case *EmailChanged:
		u.Email = e.Email
		u.Changes++
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

// todaysRegistry binds today's types and the steps from the old shapes.
func todaysRegistry() *eventsource.Registry {
	reg := eventsource.NewRegistry(nil)
	reg.Bind(&UserCreated{}, &EmailChanged{})
	must(reg.RenameType("UserSignedUp", 1, "UserCreated"))
	must(reg.Upcast("UserCreated", 2, eventsource.JSONUpcaster(func(doc map[string]any) error {
		name, _ := doc["Name"].(string)
		first, last, _ := strings.Cut(name, " ")
		doc["First"], doc["Last"] = first, last
		delete(doc, "Name")
		return nil
	})))
	return reg
}

func main() {
	db := flag.String("db", filepath.Join(os.TempDir(), "evolve.db"), "SQLite file (recreated)")
	flag.Parse()
	if err := run(context.Background(), *db); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path string) error {
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()

	// 1. Last year's code writes the stream.
	if err := writeLastYear(ctx, store); err != nil {
		return err
	}
	for r, err := range store.ReadStream(ctx, "ann", 1, 1) {
		if err != nil {
			return err
		}
		fmt.Printf("stored by last year's code: %s (codec %s) %s\n", r.Type, r.Codec, r.Data)
	}

	// 2. Today's code reads it: the upcasters run on every decoding read.
	reg := todaysRegistry()
	repo := eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithSerializer(reg),
		eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 100, Schema: 1}))
	u, err := repo.Load(ctx, "ann")
	if err != nil {
		return err
	}
	fmt.Printf("loaded by today's code: %s %s <%s> after %d changes\n", u.First, u.Last, u.Email, u.Changes)
	h, err := repo.History(ctx, "ann")
	if err != nil {
		return err
	}
	e, err := eventsource.DecodeRecord(ctx, reg, h[0])
	if err != nil {
		return err
	}
	fmt.Printf("its first event decodes as %T %+v\n", e, *e.(*UserCreated))

	// 3. Snapshot it and retire the events the snapshot covers (all but the
	// last): loads start from the snapshot; Scavenge reclaims the space.
	if err := repo.Snapshot(ctx, "ann"); err != nil {
		return err
	}
	if _, err := store.SetStreamMetadata(ctx, "ann", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 4}); err != nil {
		return err
	}
	res, err := store.Scavenge(ctx, eventsource.ScavengeOptions{})
	if err != nil {
		return err
	}
	left, err := eventsource.ReadStreamAll(ctx, store, "ann")
	if err != nil {
		return err
	}
	u, err = repo.Load(ctx, "ann")
	if err != nil {
		return err
	}
	fmt.Printf("after truncating before 4 and scavenging (%d removed): %d event left, loaded %s %s <%s> after %d changes\n",
		res.Removed, len(left), u.First, u.Last, u.Email, u.Changes)
	return nil
}

// writeLastYear saves ann's events as last year's code did.
func writeLastYear(ctx context.Context, store eventsource.Store) error {
	old := eventsource.NewRegistry(nil)
	old.Bind(&userSignedUpV1{}, &EmailChanged{})
	oldRepo := eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithSerializer(old))
	events := []eventsource.Event{&userSignedUpV1{Model: eventsource.Model{ID: "ann"}, Name: "Ann Lee"}}
	for _, email := range []string{"ann@old.example", "ann@work.example", "ann@home.example"} {
		events = append(events, &EmailChanged{Model: eventsource.Model{ID: "ann"}, Email: email})
	}
	return oldRepo.Save(ctx, events...)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
