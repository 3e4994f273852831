// Command user is the README's first program: a User aggregate whose state
// is the fold of its events, kept in an embedded SQLite file.
//
//	go run ./examples/user
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// UserCreated and UserNameSet embed eventsource.Model (aggregate ID, version,
// time), which the repository fills in when they are left zero.
type UserCreated struct {
	eventsource.Model
}

type UserNameSet struct {
	eventsource.Model
	Name string
}

// UserEmailSet implements eventsource.Event by hand, so it carries its own
// version.
type UserEmailSet struct {
	UserID  string    `json:"user_id"`
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Email   string    `json:"email"`
}

func (e *UserEmailSet) AggregateID() string { return e.UserID }
func (e *UserEmailSet) EventVersion() int64 { return e.Version }
func (e *UserEmailSet) EventAt() time.Time  { return e.At }

// EventType keeps the stored name stable if the Go type is renamed.
func (e *UserEmailSet) EventType() string { return "user.email-set" }

// User is the aggregate: On is the one way its state changes.
type User struct {
	ID      string
	Name    string
	Email   string
	Version int64
}

func (u *User) On(e eventsource.Event) error {
	switch e := e.(type) { // events always come back as pointers
	case *UserCreated:
		u.ID = e.ID
	case *UserNameSet:
		u.Name = e.Name
	case *UserEmailSet:
		u.Email = e.Email
	default:
		return fmt.Errorf("user: unexpected event %T", e)
	}
	u.Version = e.EventVersion()
	return nil
}

func main() {
	if err := run(context.Background(), filepath.Join(os.TempDir(), "users.db")); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path string) error {
	store, err := sqlite.Open(ctx, path) // creates the file and its tables
	if err != nil {
		return err
	}
	defer store.Close()

	repo := eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithStreamPrefix("user-"))
	// Bind a value or a pointer alike: either way the event decodes as a pointer.
	if err := repo.Bind(UserCreated{}, &UserNameSet{}, &UserEmailSet{}); err != nil {
		return err
	}

	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	// A first event at version 0 starts a new aggregate: the stream must not
	// exist yet, and the events get versions 1 and 2.
	err = repo.Save(ctx,
		&UserCreated{Model: eventsource.Model{ID: id}},
		&UserNameSet{Model: eventsource.Model{ID: id}, Name: "Joe Public"},
	)
	if err != nil {
		return err
	}
	err = repo.Save(ctx, &UserEmailSet{UserID: id, Version: 3, At: time.Now(), Email: "joe.public@example.com"})
	if err != nil {
		return err
	}

	// Saving at a version that is taken is a concurrency conflict, and
	// nothing is stored.
	err = repo.Save(ctx, &UserNameSet{Model: eventsource.Model{ID: id, Version: 2}, Name: "Late Writer"})
	fmt.Println("stale save refused:", errors.Is(err, eventsource.ErrConcurrency))

	user, err := repo.Load(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("now: %+v\n", *user)

	before, err := repo.LoadVersion(ctx, id, 2)
	if err != nil {
		return err
	}
	fmt.Printf("as of version 2: %+v\n", *before)
	return nil
}
