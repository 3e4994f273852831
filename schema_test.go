package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/gobcodec"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/memory"
)

// Version 1 of the user events, as an older build wrote them: the user
// signs up with one Name; a later build renamed the event UserCreated (v2)
// and split the name in two (v3).
type userSignedUpV1 struct {
	eventsource.Model
	Name string
}

func (userSignedUpV1) EventType() string { return "UserSignedUp" }

type nameSetV1 struct {
	eventsource.Model
	Name string
}

func (nameSetV1) EventType() string { return "NameSet" }

// Today's types.
type UserCreatedV3 struct {
	eventsource.Model
	First, Last string
}

func (UserCreatedV3) EventType() string  { return "UserCreated" }
func (UserCreatedV3) SchemaVersion() int { return 3 }

type NameSetV3 struct {
	eventsource.Model
	First, Last string
}

func (NameSetV3) EventType() string  { return "NameSet" }
func (NameSetV3) SchemaVersion() int { return 3 }

type Person struct {
	ID          string
	First, Last string
	Events      int
}

func (p *Person) On(e eventsource.Event) error {
	p.Events++
	switch e := e.(type) {
	case *UserCreatedV3:
		p.ID, p.First, p.Last = e.AggregateID(), e.First, e.Last
	case *NameSetV3:
		p.First, p.Last = e.First, e.Last
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

// splitName is the step from 2 to 3 of both types: Name becomes First and
// Last.
var splitName = eventsource.JSONUpcaster(func(doc map[string]any) error {
	name, _ := doc["Name"].(string)
	first, last, _ := strings.Cut(name, " ")
	doc["First"], doc["Last"] = first, last
	delete(doc, "Name")
	return nil
})

// today is the current registry: UserSignedUp v1 → UserCreated v2 (a
// rename) → v3 (the split); NameSet v1 → v2 (nothing changed) → v3.
func today(t *testing.T, c eventsource.Codec) *eventsource.Registry {
	t.Helper()
	r := eventsource.NewRegistry(c)
	for _, err := range []error{
		r.Bind(&UserCreatedV3{}, &NameSetV3{}),
		r.RenameType("UserSignedUp", 1, "UserCreated"),
		r.Upcast("UserCreated", 2, splitName),
		r.Upcast("NameSet", 1, eventsource.JSONUpcaster(func(map[string]any) error { return nil })),
		r.Upcast("NameSet", 2, splitName),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// writeV1 saves a stream as the older build did.
func writeV1(t *testing.T, store eventsource.Store, c eventsource.Codec, id string) {
	t.Helper()
	old := eventsource.NewRegistry(c)
	if err := old.Bind(&userSignedUpV1{}, &nameSetV1{}); err != nil {
		t.Fatal(err)
	}
	repo := eventsource.New(&Person{}, eventsource.WithStore(store), eventsource.WithSerializer(old))
	err := repo.Save(context.Background(),
		&userSignedUpV1{Model: eventsource.Model{ID: id, Version: 1}, Name: "Ada Byron"},
		&nameSetV1{Model: eventsource.Model{ID: id, Version: 2}, Name: "Ada Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpcastOnEveryReadPath(t *testing.T) {
	keys := encryption.NewMemoryKeyStore()
	for name, c := range map[string]eventsource.Codec{
		"json":      jsoncodec.New(),
		"encrypted": encryption.NewCodec(jsoncodec.New(), keys),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := memory.New()
			writeV1(t, store, c, "ada")
			reg := today(t, c)
			repo := eventsource.New(&Person{}, eventsource.WithStore(store), eventsource.WithSerializer(reg))
			want := Person{ID: "ada", First: "Ada", Last: "Lovelace", Events: 2}

			// Load.
			p, err := repo.Load(ctx, "ada")
			if err != nil || *p != want {
				t.Fatalf("Load = %+v, %v; want %+v", p, err, want)
			}
			// History, decoded record by record.
			h, err := repo.History(ctx, "ada")
			if err != nil || len(h) != 2 {
				t.Fatalf("History: %d records, %v", len(h), err)
			}
			for _, rec := range h {
				if eventsource.SchemaVersion(rec) != 1 {
					t.Fatalf("a v1 record reports schema version %d", eventsource.SchemaVersion(rec))
				}
			}
			e, err := eventsource.DecodeRecord(ctx, reg, h[0])
			if created, ok := e.(*UserCreatedV3); err != nil || !ok || created.First != "Ada" || created.Last != "Byron" || created.EventVersion() != 1 {
				t.Fatalf("DecodeRecord(v1 UserSignedUp) = %#v, %v", e, err)
			}
			// A query.
			names, err := projection.NewQuery(projection.FromStream(store, "ada"), []string{}).
				OnEvent(reg, func(s []string, e eventsource.Event) ([]string, error) {
					switch e := e.(type) {
					case *UserCreatedV3:
						return append(s, e.Last), nil
					case *NameSetV3:
						return append(s, e.Last), nil
					}
					return s, fmt.Errorf("unexpected %T", e)
				}).Run(ctx)
			if err != nil || strings.Join(names, ",") != "Byron,Lovelace" {
				t.Fatalf("query saw %v, %v", names, err)
			}
			// A projection that decodes in its fold.
			proj := projection.NewProjection("people", store, projection.NewMemoryCheckpointStore(), 0,
				func(n int, rec eventsource.Record) (int, error) {
					e, err := eventsource.DecodeRecord(ctx, reg, rec)
					if err != nil {
						return n, err
					}
					if _, ok := e.(*UserCreatedV3); ok {
						n++
					}
					return n, nil
				}, projection.WithPolling(time.Millisecond, 5*time.Millisecond))
			pctx, stop := context.WithTimeout(ctx, 10*time.Second)
			done := make(chan error, 1)
			go func() { done <- proj.Run(pctx) }()
			for proj.Checkpoint().Position < h[1].Position && pctx.Err() == nil {
				time.Sleep(2 * time.Millisecond)
			}
			stop()
			if err := <-done; !errors.Is(err, context.Canceled) || proj.State() != 1 {
				t.Fatalf("projection: state %d, %v", proj.State(), err)
			}
			// New events are written at the current version and read back.
			if err := repo.Save(ctx, &NameSetV3{Model: eventsource.Model{ID: "ada", Version: 3}, First: "Augusta", Last: "King"}); err != nil {
				t.Fatal(err)
			}
			h, _ = repo.History(ctx, "ada")
			if v := eventsource.SchemaVersion(h[2]); v != 3 {
				t.Fatalf("a new record has schema version %d, want 3 (codec %q)", v, h[2].Codec)
			}
			if p, err := repo.Load(ctx, "ada"); err != nil || p.First != "Augusta" || p.Events != 3 {
				t.Fatalf("Load after a v3 save = %+v, %v", p, err)
			}
		})
	}
}

// Without the upcasters, a v1 stream does not load into today's types.
func TestNoUpcasterIsAnError(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	writeV1(t, store, jsoncodec.New(), "ada")
	// Today's types bound, the steps of NameSet only from 2: a v1 NameSet
	// has no way up.
	reg := eventsource.NewRegistry(nil)
	if err := reg.Bind(&UserCreatedV3{}, &NameSetV3{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Upcast("UserSignedUp", 1, eventsource.Rename("UserCreated")); err != nil {
		t.Fatal(err)
	}
	if err := reg.Upcast("UserCreated", 2, splitName); err != nil {
		t.Fatal(err)
	}
	h, err := eventsource.ReadStreamAll(ctx, store, "ada")
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.UnmarshalEventContext(ctx, h[1])
	var se *eventsource.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, eventsource.ErrSchema) || se.Type != "NameSet" || se.Schema != 1 || se.Current != 3 {
		t.Fatalf("v1 NameSet without its steps: %v", err)
	}
}

func TestUpcastErrors(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	writeV1(t, store, jsoncodec.New(), "ada")
	h, _ := eventsource.ReadStreamAll(ctx, store, "ada")
	boom := errors.New("boom")

	// A step that fails names the type, the versions and the position.
	reg := today(t, nil)
	failing := eventsource.NewRegistry(nil)
	_ = failing.Bind(&UserCreatedV3{}, &NameSetV3{})
	_ = failing.Upcast("UserSignedUp", 1, func(string, []byte) (string, []byte, error) { return "", nil, boom })
	_, err := failing.UnmarshalEventContext(ctx, h[0])
	var se *eventsource.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, boom) || se.Schema != 1 || se.Position != h[0].Position || !strings.Contains(err.Error(), "UserSignedUp") {
		t.Fatalf("a failing step: %v", err)
	}
	// A record newer than the code.
	newer := h[1]
	newer.Codec = "json;v=4"
	_, err = reg.UnmarshalEventContext(ctx, newer)
	if !errors.As(err, &se) || se.Schema != 4 || se.Current != 3 || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("a record newer than the code: %v", err)
	}
	// Steps that do not follow each other are refused when registered.
	gap := eventsource.NewRegistry(nil)
	if err := gap.Upcast("X", 2, splitName); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("a step from 2 with none from 1: %v", err)
	}
	if err := reg.Upcast("NameSet", 1, splitName); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("a second step from one version: %v", err)
	}
}

// A shredded subject's old events read as zero values with redaction, and
// still go through renames.
func TestUpcastRedacted(t *testing.T) {
	ctx := context.Background()
	keys := encryption.NewMemoryKeyStore()
	store := memory.New()
	writeV1(t, store, encryption.NewCodec(jsoncodec.New(), keys), "ada")
	if err := keys.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	h, _ := eventsource.ReadStreamAll(ctx, store, "ada")
	reg := today(t, encryption.NewCodec(jsoncodec.New(), keys, encryption.WithRedaction()))
	e, err := reg.UnmarshalEventContext(ctx, h[0])
	if created, ok := e.(*UserCreatedV3); err != nil || !ok || created.First != "" {
		t.Fatalf("redacted v1 UserSignedUp = %#v, %v", e, err)
	}
	_, err = today(t, encryption.NewCodec(jsoncodec.New(), keys)).UnmarshalEventContext(ctx, h[0])
	if !errors.Is(err, eventsource.ErrShredded) {
		t.Fatalf("shredded without redaction: %v", err)
	}
}

// A record that names no codec, of a type only its upcasters know, is read
// with the registry's codec.
func TestUpcastRecordWithoutCodec(t *testing.T) {
	reg := today(t, nil)
	rec := eventsource.Record{StreamID: "ada", Version: 1, Type: "UserSignedUp", Data: []byte(`{"ID":"ada","Name":"Ada Byron"}`)}
	e, err := reg.UnmarshalEventContext(context.Background(), rec)
	if created, ok := e.(*UserCreatedV3); err != nil || !ok || created.Last != "Byron" {
		t.Fatalf("= %#v, %v", e, err)
	}
}

// A type filter built with StoredNames includes the old names.
func TestStoredNames(t *testing.T) {
	reg := today(t, nil)
	if got := reg.StoredNames("UserCreated"); strings.Join(got, ",") != "UserCreated,UserSignedUp" {
		t.Fatalf("StoredNames(UserCreated) = %v", got)
	}
	if got := reg.StoredNames("NameSet"); strings.Join(got, ",") != "NameSet" {
		t.Fatalf("StoredNames(NameSet) = %v", got)
	}
	ctx := context.Background()
	store := memory.New()
	writeV1(t, store, jsoncodec.New(), "ada")
	n := 0
	for rec, err := range store.ReadAll(ctx, 0, eventsource.Filter{Types: reg.StoredNames("UserCreated")}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventsource.DecodeRecord(ctx, reg, rec); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("a filter on UserCreated's stored names read %d records, want the v1 UserSignedUp", n)
	}
}

func TestJSONUpcasterKeepsTheAggregateID(t *testing.T) {
	step := eventsource.JSONUpcaster(func(doc map[string]any) error {
		doc["ID"], doc["X"] = "someone-else", 1
		return nil
	})
	_, out, err := step("T", []byte(`{"ID":"ada","Name":"x"}`))
	if err != nil || !strings.Contains(string(out), `"ID":"ada"`) || !strings.Contains(string(out), `"X":1`) {
		t.Fatalf("= %s, %v", out, err)
	}
}

// TestTypedUpcasterWithGob: gob's stored form is not an editable document,
// so a typed step decodes the old Go type and returns the new shape; the v1
// gob stream loads into today's types only through it.
func TestTypedUpcasterWithGob(t *testing.T) {
	ctx := context.Background()
	gob := gobcodec.New()
	store := memory.New()
	writeV1(t, store, gob, "ada")
	split := func(name string) (string, string) {
		first, last, _ := strings.Cut(name, " ")
		return first, last
	}
	reg := eventsource.NewRegistry(gob)
	for _, err := range []error{
		reg.Bind(&UserCreatedV3{}, &NameSetV3{}),
		reg.Upcast("UserSignedUp", 1, eventsource.TypedUpcaster(gob, func(old *userSignedUpV1) (string, any, error) {
			first, last := split(old.Name)
			return "UserCreated", &UserCreatedV3{Model: old.Model, First: first, Last: last}, nil
		}), "UserCreated"),
		reg.Upcast("UserCreated", 2, func(typ string, data []byte) (string, []byte, error) { return typ, data, nil }),
		reg.Upcast("NameSet", 1, eventsource.TypedUpcaster(gob, func(old *nameSetV1) (string, any, error) {
			first, last := split(old.Name)
			return "", &NameSetV3{Model: old.Model, First: first, Last: last}, nil
		})),
		reg.Upcast("NameSet", 2, func(typ string, data []byte) (string, []byte, error) { return typ, data, nil }),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := eventsource.New(&Person{}, eventsource.WithStore(store), eventsource.WithSerializer(reg)).Load(ctx, "ada")
	if err != nil || p.ID != "ada" || p.First != "Ada" || p.Last != "Lovelace" || p.Events != 2 {
		t.Fatalf("Load through typed gob upcasters = %+v, %v", p, err)
	}
	// Without the steps the v1 gob data is refused, not read as zero fields.
	bare := eventsource.NewRegistry(gob)
	if err := bare.Bind(&UserCreatedV3{}, &NameSetV3{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eventsource.New(&Person{}, eventsource.WithStore(store), eventsource.WithSerializer(bare)).Load(ctx, "ada"); err == nil {
		t.Fatal("the v1 gob stream loaded without upcasters")
	}
	// A step whose old type does not match the data names it.
	wrong := eventsource.TypedUpcaster(gob, func(old *struct{ Other chan int }) (string, any, error) { return "", old, nil })
	if _, _, err := wrong("NameSet", []byte("not gob")); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("a typed step over bad data: %v", err)
	}
}
