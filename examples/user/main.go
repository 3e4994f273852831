// Command user shows the event model without commands: events saved with
// Save and folded by Load, one of them implementing eventsource.Event
// directly instead of embedding Model.
//
//	go run ./examples/user
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// UserCreated and UserNameSet embed Model, which supplies the ID, version and
// time.
type UserCreated struct {
	eventsource.Model
}

type UserNameSet struct {
	eventsource.Model
	Name string
}

// UserEmailSet implements eventsource.Event itself.
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

// User is the aggregate.
type User struct {
	ID      string
	Name    string
	Email   string
	Version int64
}

func (u *User) On(e eventsource.Event) error {
	switch e := e.(type) {
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
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "eventsource-user-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "users.db")
	fmt.Println("event store:", path)
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()

	repo := eventsource.New(&User{}, eventsource.WithStore(store), eventsource.WithStreamPrefix("user-"))
	if err := repo.Bind(&UserCreated{}, &UserNameSet{}, &UserEmailSet{}); err != nil {
		return err
	}

	id := "123"
	err = repo.Save(ctx,
		&UserCreated{Model: eventsource.Model{ID: id, Version: 1}},
		&UserNameSet{Model: eventsource.Model{ID: id, Version: 2}, Name: "Joe Public"},
		&UserEmailSet{UserID: id, Version: 3, At: time.Now(), Email: "joe.public@example.com"},
	)
	if err != nil {
		return err
	}

	// Saving at a version that is taken is a concurrency conflict.
	err = repo.Save(ctx, &UserNameSet{Model: eventsource.Model{ID: id, Version: 2}, Name: "Late Writer"})
	fmt.Println("stale save:", err)

	user, err := repo.Load(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("%+v\n", *user)

	before, err := repo.LoadVersion(ctx, id, 2)
	if err != nil {
		return err
	}
	fmt.Printf("as of version 2: %+v\n", *before)
	return nil
}
