package eventsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/gobcodec"
	"github.com/eventsource-go/eventsource/store/memory"
)

type ItemAdded struct {
	eventsource.Model
	Name string
}

type ItemRemoved struct {
	eventsource.Model
	Name string
}

type Renamed struct {
	eventsource.Model
	To string
}

func (*Renamed) EventType() string { return "cart.renamed" }

type AddItem struct {
	eventsource.CommandModel
	Name string
}

type Noop struct{ eventsource.CommandModel }

var errEmptyName = errors.New("empty name")

type Cart struct {
	Items   []string
	Name    string
	Version int64
}

func (c *Cart) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *ItemAdded:
		c.Items = append(c.Items, e.Name)
	case *ItemRemoved:
		c.Items = c.Items[:len(c.Items)-1]
	case *Renamed:
		c.Name = e.To
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	c.Version = e.EventVersion()
	return nil
}

func (c *Cart) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	switch cmd := cmd.(type) {
	case *AddItem:
		if cmd.Name == "" {
			return nil, errEmptyName
		}
		return []eventsource.Event{&ItemAdded{Name: cmd.Name}}, nil
	case *Noop:
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %T", cmd)
}

// NotAHandler is an aggregate without command handling.
type NotAHandler struct{}

func (*NotAHandler) On(eventsource.Event) error { return nil }

func newRepo(t *testing.T, opts ...eventsource.Option) (*eventsource.Repository[*Cart], *memory.Store) {
	t.Helper()
	s := memory.New()
	repo := eventsource.New(&Cart{}, append([]eventsource.Option{eventsource.WithStore(s)}, opts...)...)
	if err := repo.Bind(&ItemAdded{}, &ItemRemoved{}, &Renamed{}); err != nil {
		t.Fatal(err)
	}
	return repo, s
}

func TestNewValidatesConfiguration(t *testing.T) {
	ctx := context.Background()
	cases := map[string]error{}
	_, err := eventsource.New(&Cart{}).Load(ctx, "x")
	cases["no store"] = err
	_, err = eventsource.New(&Cart{}, eventsource.WithStore(nil)).Load(ctx, "x")
	cases["nil store"] = err
	_, err = eventsource.New(new(counter), eventsource.WithStore(memory.New())).Load(ctx, "x")
	cases["not a struct"] = err
	_, err = eventsource.New(&Cart{}, eventsource.WithStore(memory.New()), eventsource.WithSerializer(nil)).Load(ctx, "x")
	cases["nil serializer"] = err
	for name, err := range cases {
		if !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestBind(t *testing.T) {
	r := eventsource.NewRegistry(nil)
	if err := r.Bind(nil); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("Bind(nil) = %v", err)
	}
	if err := r.Bind(&ItemAdded{}, ItemAdded{}, &ItemAdded{}); err != nil {
		t.Fatalf("binding one type thrice: %v", err)
	}
	type other struct{ eventsource.Model }
	if err := r.Register("ItemAdded", gobcodec.New(), func() eventsource.Event { return &other{} }); !errors.Is(err, eventsource.ErrDuplicateType) {
		t.Fatalf("two types for one name: %v, want ErrDuplicateType", err)
	}
	if err := r.Register("Other", gobcodec.New(), func() eventsource.Event { return &ItemAdded{} }); !errors.Is(err, eventsource.ErrDuplicateType) {
		t.Fatalf("two names for one type: %v, want ErrDuplicateType", err)
	}
	if err := r.Bind(&Renamed{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Types(), ","); got != "ItemAdded,cart.renamed" {
		t.Fatalf("Types() = %s", got)
	}
}

func TestSaveAndLoad(t *testing.T) {
	ctx := eventsource.ContextWithMetadata(context.Background(), map[string]string{"user": "ann"})
	repo, store := newRepo(t, eventsource.WithStreamPrefix("cart-"))
	added := &ItemAdded{Model: eventsource.Model{ID: "c1", Version: 1}, Name: "apple"}
	if err := repo.Save(ctx, added, &Renamed{Model: eventsource.Model{ID: "c1", Version: 2}, To: "groceries"}); err != nil {
		t.Fatal(err)
	}
	if added.At.IsZero() {
		t.Fatal("Save did not fill in the event time")
	}
	cart, err := repo.Load(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if cart.Version != 2 || cart.Name != "groceries" || len(cart.Items) != 1 {
		t.Fatalf("loaded %+v", cart)
	}
	h, err := eventsource.ReadStreamAll(ctx, store, "cart-c1")
	if err != nil || len(h) != 2 {
		t.Fatalf("stream cart-c1: %d records, %v", len(h), err)
	}
	if h[1].Type != "cart.renamed" || h[0].Metadata["user"] != "ann" || h[0].Codec != "json" {
		t.Fatalf("stored %+v", h[1])
	}
	// An unchecked append, asked for: at the end, versions filled in.
	late := &ItemAdded{Model: eventsource.Model{ID: "c1"}, Name: "pear"}
	if _, err := repo.SaveExpecting(ctx, eventsource.Any, late); err != nil {
		t.Fatal(err)
	}
	if late.Version != 3 {
		t.Fatalf("version filled in as %d, want 3", late.Version)
	}
	// A stale version is a conflict that stores nothing.
	err = repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c1", Version: 2}, Name: "x"})
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ce) || ce.Stream != "cart-c1" || ce.Actual != 3 {
		t.Fatalf("stale save: %v", err)
	}
	old, err := repo.LoadVersion(ctx, "c1", 1)
	if err != nil || old.Version != 1 || old.Name != "" {
		t.Fatalf("LoadVersion(1) = %+v, %v", old, err)
	}
}

func TestSaveRejectsBadEvents(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	type unbound struct{ eventsource.Model }
	cases := []struct {
		name   string
		events []eventsource.Event
		want   error
	}{
		{"none", nil, eventsource.ErrNoEventsProduced},
		{"nil", []eventsource.Event{nil}, eventsource.ErrInvalidEvent},
		{"nil pointer", []eventsource.Event{&ItemAdded{Model: eventsource.Model{ID: "c", Version: 1}}, (*ItemAdded)(nil)}, eventsource.ErrInvalidEvent},
		{"two aggregates", []eventsource.Event{
			&ItemAdded{Model: eventsource.Model{ID: "c", Version: 1}},
			&ItemAdded{Model: eventsource.Model{ID: "d", Version: 2}},
		}, eventsource.ErrInvalidEvent},
		{"gap", []eventsource.Event{
			&ItemAdded{Model: eventsource.Model{ID: "c", Version: 1}},
			&ItemAdded{Model: eventsource.Model{ID: "c", Version: 3}},
		}, eventsource.ErrInvalidEvent},
		{"no ID", []eventsource.Event{&ItemAdded{}}, eventsource.ErrInvalidEvent},
		{"unbound type", []eventsource.Event{&unbound{Model: eventsource.Model{ID: "c", Version: 1}}}, eventsource.ErrUnknownEventType},
		{"bad stream ID", []eventsource.Event{&ItemAdded{Model: eventsource.Model{ID: "bad\xff", Version: 1}}}, eventsource.ErrInvalidStreamID},
	}
	for _, c := range cases {
		if err := repo.Save(ctx, c.events...); !errors.Is(err, c.want) {
			t.Errorf("%s: Save = %v, want %v", c.name, err, c.want)
		}
	}
	if h, _ := store.Head(ctx); h != 0 {
		t.Fatalf("refused saves stored %d records", h)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	if _, err := repo.Load(ctx, "missing"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Load of a missing aggregate: %v", err)
	}
	if _, err := store.Append(ctx, "unknown", eventsource.NoStream, []eventsource.Record{{Type: "Mystery", Data: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Load(ctx, "unknown")
	var ute *eventsource.UnknownEventTypeError
	if !errors.Is(err, eventsource.ErrUnknownEventType) || !errors.As(err, &ute) || ute.Type != "Mystery" {
		t.Fatalf("Load of an unknown type: %v", err)
	}
	if _, err := store.Append(ctx, "corrupt", eventsource.NoStream, []eventsource.Record{{Type: "ItemAdded", Codec: "json", Data: []byte("{not json")}}); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Load(ctx, "corrupt")
	var de *eventsource.DecodeError
	if !errors.Is(err, eventsource.ErrCorruptData) || !errors.As(err, &de) || de.Version != 1 || de.Type != "ItemAdded" {
		t.Fatalf("Load of corrupt bytes: %v", err)
	}
	if _, err := store.Append(ctx, "codec", eventsource.NoStream, []eventsource.Record{{Type: "ItemAdded", Codec: "xml", Data: []byte("<x/>")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ctx, "codec"); !errors.As(err, &ute) || ute.Codec != "xml" {
		t.Fatalf("Load with an unknown codec: %v", err)
	}
	if _, err := store.Append(ctx, "fold", eventsource.NoStream, []eventsource.Record{{Type: "ItemRemoved", Codec: "json", Data: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	// An error from On stops the load and names the event.
	bad := eventsource.New(&failing{}, eventsource.WithStore(store), eventsource.WithSerializer(repo.Serializer()))
	if _, err := bad.Load(ctx, "fold"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Load whose On fails: %v", err)
	}
}

// counter is an aggregate that is not a struct, which New refuses.
type counter int

func (*counter) On(eventsource.Event) error { return nil }

type failing struct{}

func (*failing) On(eventsource.Event) error { return errors.New("refused") }

func TestApply(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t)
	v, err := repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "c1"}, Name: "apple"})
	if err != nil || v != 1 {
		t.Fatalf("Apply on a new aggregate: %d, %v", v, err)
	}
	v, err = repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "c1"}, Name: ""})
	if !errors.Is(err, errEmptyName) || v != 1 {
		t.Fatalf("refused command: %d, %v", v, err)
	}
	if v, err = repo.Apply(ctx, &Noop{eventsource.CommandModel{ID: "c1"}}); !errors.Is(err, eventsource.ErrNoEventsProduced) || v != 1 {
		t.Fatalf("no events: %d, %v", v, err)
	}
	if _, err := repo.Apply(ctx, &Noop{}); !errors.Is(err, eventsource.ErrInvalidCommand) {
		t.Fatalf("command without ID: %v", err)
	}
	if _, err := repo.Apply(ctx, nil); !errors.Is(err, eventsource.ErrInvalidCommand) {
		t.Fatalf("nil command: %v", err)
	}
	nh := eventsource.New(&NotAHandler{}, eventsource.WithStore(memory.New()))
	if _, err := nh.Apply(ctx, &Noop{eventsource.CommandModel{ID: "x"}}); !errors.Is(err, eventsource.ErrNoCommandHandler) {
		t.Fatalf("aggregate without Apply: %v", err)
	}
	cart, err := repo.Load(ctx, "c1")
	if err != nil || len(cart.Items) != 1 || cart.Version != 1 {
		t.Fatalf("after refused commands: %+v, %v", cart, err)
	}
}

func TestApplyRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t, eventsource.WithRetry(eventsource.RetryPolicy{Attempts: 100, Backoff: 100 * time.Microsecond, MaxBackoff: 5 * time.Millisecond}))
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "hot"}, Name: fmt.Sprint(i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cart, err := repo.Load(ctx, "hot")
	if err != nil || len(cart.Items) != n || cart.Version != n {
		t.Fatalf("after %d concurrent commands: %+v, %v", n, cart, err)
	}
}

// racingStore appends a competing event before every append it forwards, so
// every save conflicts.
type racingStore struct{ *memory.Store }

func (s racingStore) Append(ctx context.Context, stream string, ev eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	if _, err := s.Store.Append(ctx, stream, eventsource.Any, []eventsource.Record{{Type: "ItemAdded", Codec: "json", Data: []byte(`{"Name":"rival"}`)}}); err != nil {
		return eventsource.AppendResult{}, err
	}
	return s.Store.Append(ctx, stream, ev, recs)
}

func TestApplyGivesUpAfterAttempts(t *testing.T) {
	ctx := context.Background()
	store := racingStore{memory.New()}
	repo := eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithRetry(eventsource.RetryPolicy{Attempts: 3}))
	if err := repo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "c"}, Name: "mine"})
	if !errors.Is(err, eventsource.ErrConcurrency) {
		t.Fatalf("Apply = %v, want ErrConcurrency after 3 attempts", err)
	}
	h, _ := store.Head(ctx)
	if h != 3 {
		t.Fatalf("%d records stored, want the 3 rivals only", h)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := repo.Apply(cctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "c"}, Name: "mine"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled context: %v", err)
	}
}

func TestApplyRetriesForAsLongAsThePolicySays(t *testing.T) {
	ctx := context.Background()
	store := racingStore{memory.New()}
	repo := eventsource.New(&Cart{}, eventsource.WithStore(store),
		eventsource.WithRetry(eventsource.RetryPolicy{MaxElapsed: 50 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}))
	if err := repo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "c"}, Name: "mine"})
	if !errors.Is(err, eventsource.ErrConcurrency) {
		t.Fatalf("Apply = %v, want ErrConcurrency once MaxElapsed passed", err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before MaxElapsed", took)
	}
	if h, _ := store.Head(ctx); h < 10 {
		t.Fatalf("only %d attempts in 50ms of 1-2ms waits: the policy capped attempts", h)
	}
	// The default has no cap on attempts: the context ends the run.
	dflt := eventsource.New(&Cart{}, eventsource.WithStore(store))
	if err := dflt.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	before, _ := store.Head(ctx)
	if _, err := dflt.Apply(tctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "d"}, Name: "mine"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("default policy against endless conflicts: %v, want the context's deadline", err)
	}
	if after, _ := store.Head(ctx); after-before <= 5 {
		t.Fatalf("default policy made %d attempts, the old cap was 5", after-before)
	}
}

func TestCodecsSideBySide(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	gobRepo := eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithSerializer(eventsource.NewRegistry(gobcodec.New())))
	if err := gobRepo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	if err := gobRepo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c", Version: 1}, Name: "gob"}); err != nil {
		t.Fatal(err)
	}
	// A JSON repository that knows the gob codec reads both.
	reg := eventsource.NewRegistry(nil)
	if err := reg.AddCodec(gobcodec.New()); err != nil {
		t.Fatal(err)
	}
	jsonRepo := eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithSerializer(reg))
	if err := jsonRepo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	if err := jsonRepo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c", Version: 2}, Name: "json"}); err != nil {
		t.Fatal(err)
	}
	cart, err := jsonRepo.Load(ctx, "c")
	if err != nil || strings.Join(cart.Items, ",") != "gob,json" {
		t.Fatalf("loaded %+v, %v", cart, err)
	}
	h, _ := jsonRepo.History(ctx, "c")
	if h[0].Codec != "gob" || h[1].Codec != "json" {
		t.Fatalf("codecs stored: %s, %s", h[0].Codec, h[1].Codec)
	}
}

func TestNewEventID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 10000; i++ {
		id := eventsource.NewEventID()
		if len(id) != 36 || id[14] != '7' || seen[id] {
			t.Fatalf("id %q: malformed or repeated", id)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %s then %s", prev, id)
		}
		seen[id], prev = true, id
	}
}

// TestRootImportsOnlyStandardLibrary keeps the core free of dependencies, so
// a program that imports it and one store compiles only that store's driver.
func TestRootImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: the root package may import only the standard library", f, path)
			}
		}
	}
}

// storedVersion is the Version field of a record's JSON data.
// storedVersion is the version a stored record's event reports when
// decoded. The payload carries none: Model.Version is the record's.
func storedVersion(t *testing.T, r eventsource.Record) int64 {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("record %d of %q: %v", r.Version, r.StreamID, err)
	}
	if _, ok := m["Version"]; ok {
		t.Fatalf("record %d of %q: the payload carries a Version: %s", r.Version, r.StreamID, r.Data)
	}
	reg, err := eventsource.NewJSONSerializer(&ItemAdded{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := eventsource.DecodeRecord(context.Background(), reg, r)
	if err != nil {
		t.Fatal(err)
	}
	return e.EventVersion()
}

func TestSaveAtVersionZeroStartsANewAggregate(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	if err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "n"}, Name: "a"}, &ItemAdded{Model: eventsource.Model{ID: "n"}, Name: "b"}); err != nil {
		t.Fatal(err)
	}
	// Saving version 0 again is not an unchecked append: the aggregate exists.
	err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "n"}, Name: "c"})
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ce) || ce.Expected != eventsource.NoStream || ce.Actual != 2 {
		t.Fatalf("second save at version 0: %v, want a conflict expecting no stream at 2", err)
	}
	h, _ := eventsource.ReadStreamAll(ctx, store, "n")
	if len(h) != 2 {
		t.Fatalf("%d records stored, want 2", len(h))
	}
	for _, r := range h {
		if got := storedVersion(t, r); got != r.Version {
			t.Fatalf("record %d stores Version %d", r.Version, got)
		}
	}
}

func TestSaveExpecting(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	add := func(id string) *ItemAdded { return &ItemAdded{Model: eventsource.Model{ID: id}, Name: "x"} }
	if v, err := repo.SaveExpecting(ctx, eventsource.Any, add("a"), add("a")); err != nil || v != 2 {
		t.Fatalf("Any on a new stream: %d, %v", v, err)
	}
	e := add("a")
	if v, err := repo.SaveExpecting(ctx, eventsource.Any, e); err != nil || v != 3 || e.Version != 3 {
		t.Fatalf("Any at the end: %d, %v, event version %d", v, err, e.Version)
	}
	if v, err := repo.SaveExpecting(ctx, eventsource.StreamExists, add("a")); err != nil || v != 4 {
		t.Fatalf("StreamExists: %d, %v", v, err)
	}
	_, err := repo.SaveExpecting(ctx, eventsource.StreamExists, add("missing"))
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ce) || ce.Expected != eventsource.StreamExists || ce.Actual != 0 {
		t.Fatalf("StreamExists on a missing stream: %v", err)
	}
	if _, err := repo.SaveExpecting(ctx, eventsource.Exact(3), add("a")); !errors.Is(err, eventsource.ErrConcurrency) {
		t.Fatalf("Exact(3) at 4: %v", err)
	}
	if v, err := repo.SaveExpecting(ctx, eventsource.Exact(4), add("a")); err != nil || v != 5 {
		t.Fatalf("Exact(4): %d, %v", v, err)
	}
	if _, err := repo.SaveExpecting(ctx, eventsource.ExpectedVersion(-9), add("a")); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("expected version -9: %v", err)
	}
	h, _ := eventsource.ReadStreamAll(ctx, store, "a")
	for _, r := range h {
		if got := storedVersion(t, r); got != r.Version {
			t.Fatalf("record %d stores Version %d", r.Version, got)
		}
	}
	if h, _ := eventsource.ReadStreamAll(ctx, store, "missing"); len(h) != 0 {
		t.Fatalf("refused StreamExists stored %d records", len(h))
	}
}

func TestSaveExpectingAnyUnderContention(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := repo.SaveExpecting(ctx, eventsource.Any, &ItemAdded{Model: eventsource.Model{ID: "hot"}, Name: "x"})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h, _ := eventsource.ReadStreamAll(ctx, store, "hot")
	if len(h) != writers*each {
		t.Fatalf("%d records, want %d", len(h), writers*each)
	}
	for _, r := range h {
		if got := storedVersion(t, r); got != r.Version {
			t.Fatalf("record %d stores Version %d", r.Version, got)
		}
	}
}

// EmailSet implements Event by hand, without Model.
type EmailSet struct {
	UserID  string
	Version int64
	At      time.Time
	Email   string
}

func (e *EmailSet) AggregateID() string { return e.UserID }
func (e *EmailSet) EventVersion() int64 { return e.Version }
func (e *EmailSet) EventAt() time.Time  { return e.At }

func TestSaveHandWrittenEventNeedsItsVersion(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t)
	if err := repo.Bind(&EmailSet{}); err != nil {
		t.Fatal(err)
	}
	err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "u"}}, &EmailSet{UserID: "u", Email: "a@example.com"})
	if !errors.Is(err, eventsource.ErrInvalidEvent) || !strings.Contains(err.Error(), "set it to 2") {
		t.Fatalf("hand-written event without a version: %v", err)
	}
	if _, err := repo.SaveExpecting(ctx, eventsource.Any, &EmailSet{UserID: "u", Email: "a@example.com"}); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("unchecked append of a hand-written event without a version: %v", err)
	}
	if h, _ := store.Head(ctx); h != 0 {
		t.Fatalf("refused saves stored %d records", h)
	}
	if err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "u"}}, &EmailSet{UserID: "u", Version: 2, Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
}

// Records stored with a zero Version in their data (as an unchecked Save
// wrote them before) report the record's version and time on every path.
func TestDecodedEventsReportTheirPlace(t *testing.T) {
	ctx := context.Background()
	repo, store := newRepo(t, eventsource.WithStreamPrefix("cart-"))
	res, err := store.Append(ctx, "cart-old", eventsource.Any, []eventsource.Record{
		{Type: "ItemAdded", Codec: "json", Data: []byte(`{"ID":"old","Version":0,"Name":"a"}`)},
		{Type: "ItemAdded", Codec: "json", Data: []byte(`{"ID":"old","Version":0,"Name":"b"}`)},
	})
	if err != nil || res.LastVersion != 2 {
		t.Fatal(res, err)
	}
	cart, err := repo.Load(ctx, "old")
	if err != nil || cart.Version != 2 {
		t.Fatalf("Load: %+v, %v", cart, err)
	}
	h, err := repo.History(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h {
		for name, decode := range map[string]func() (eventsource.Event, error){
			"UnmarshalEvent": func() (eventsource.Event, error) { return repo.Serializer().UnmarshalEvent(r) },
			"DecodeRecord":   func() (eventsource.Event, error) { return eventsource.DecodeRecord(ctx, repo.Serializer(), r) },
		} {
			e, err := decode()
			if err != nil {
				t.Fatal(err)
			}
			if e.EventVersion() != r.Version || !e.EventAt().Equal(r.RecordedAt) || e.AggregateID() != "old" {
				t.Fatalf("%s of record %d: version %d, at %v (recorded %v), aggregate %q",
					name, r.Version, e.EventVersion(), e.EventAt(), r.RecordedAt, e.AggregateID())
			}
		}
	}
}
