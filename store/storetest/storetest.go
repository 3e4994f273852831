// Package storetest is the conformance suite of eventsource stores: every
// invariant of the store contract as a subtest. Each store's own tests call
// Run against the real server; a third-party store can run it too.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Features{Notify: true}, func(t *testing.T) eventsource.Store {
//			return newEmptyStore(t) // a fresh, empty store; released with t.Cleanup
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Features declares what a store claims beyond the core contract. The
// suite finds a store's optional capabilities by type assertion and tests
// every one its type implements, claimed or not; a claim the type does not
// back fails the suite rather than being skipped, and every skip says why.
type Features struct {
	Notify       bool // claims eventsource.Notifier
	Head         bool // claims eventsource.HeadReader
	ListStreams  bool // claims eventsource.StreamLister
	DeleteStream bool // claims eventsource.StreamDeleter
	Reservations bool // claims eventsource.Reserver
	Snapshots    bool // claims eventsource.SnapshotStore
	Lifecycle    bool // claims eventsource.StreamLifecycle
	Scavenge     bool // claims eventsource.Scavenger
	// CommitHook: the store calls storekit.BeforeCommit between writing and
	// committing an append, so the suite can make commits finish out of
	// order and cancel appends mid-flight. No type shows it: the suite
	// checks the claim by counting calls.
	CommitHook bool
	// SlowType, for a store whose append is one statement with nothing of
	// its own between writing and committing (so no place for the commit
	// hook), names a record type whose appends the store's test setup makes
	// slow to commit after their records are written, in the database
	// itself (PostgreSQL's tests use a trigger that sleeps 5-30ms): the
	// suite uses such appends where it would use the hook, so the proof runs
	// the store's production append path.
	SlowType string
	// Writers and AppendsPerWriter size the concurrent-writers tests
	// (8 and 40 when 0).
	Writers, AppendsPerWriter int
}

// NewStore returns a fresh, empty store for one test, and registers its
// release with t.Cleanup.
type NewStore func(t *testing.T) eventsource.Store

// test is one concern of the suite.
type test struct {
	name string
	fn   func(*testing.T, Features, eventsource.Store)
}

// The contract every store keeps, by concern (appends.go, idempotency.go,
// reads.go, ordering.go, apply.go, limits.go).
var contract = []test{
	{"RoundTrip", testRoundTrip},
	{"StreamRanges", testStreamRanges},
	{"ExpectedVersion", testExpectedVersion},
	{"ConcurrentSameVersion", testConcurrentSameVersion},
	{"ConcurrentAny", testConcurrentAny},
	{"AtomicAppend", testAtomicAppend},
	{"CancelledAppend", testCancelledAppend},
	{"BadInput", testBadInput},
	{"Idempotency", testIdempotency},
	{"GlobalLog", testGlobalLog},
	{"Filters", testFilters},
	{"EarlyBreak", testEarlyBreak},
	{"NoMissedEvents", testNoMissedEvents},
	{"ApplyUnderContention", testApplyUnderContention},
	{"Limits", testLimits},
}

// capability is an optional interface and its test (capabilities.go).
type capability struct {
	test
	iface      string
	implements func(eventsource.Store) bool
	claimed    func(Features) bool
}

func is[T any](s eventsource.Store) bool { _, ok := eventsource.As[T](s); return ok }

var capabilities = []capability{
	{test{"Notify", testNotify}, "Notifier", is[eventsource.Notifier], func(f Features) bool { return f.Notify }},
	{test{"Head", testHead}, "HeadReader", is[eventsource.HeadReader], func(f Features) bool { return f.Head }},
	{test{"ListStreams", testListStreams}, "StreamLister", is[eventsource.StreamLister], func(f Features) bool { return f.ListStreams }},
	{test{"DeleteStream", testDeleteStream}, "StreamDeleter", is[eventsource.StreamDeleter], func(f Features) bool { return f.DeleteStream }},
	{test{"Reservations", testReservations}, "Reserver", is[eventsource.Reserver], func(f Features) bool { return f.Reservations }},
	{test{"Snapshots", testSnapshots}, "SnapshotStore", is[eventsource.SnapshotStore], func(f Features) bool { return f.Snapshots }},
	{test{"Lifecycle", testLifecycle}, "StreamLifecycle", is[eventsource.StreamLifecycle], func(f Features) bool { return f.Lifecycle }},
	{test{"Scavenge", testScavenge}, "Scavenger", is[eventsource.Scavenger], func(f Features) bool { return f.Scavenge }},
}

// Run runs the whole suite. Subtests run in parallel, each on its own store.
// (The live-subscriber test, which needs the read side, is in package
// projectiontest: LiveSubscriber.)
func Run(t *testing.T, f Features, newStore NewStore) {
	if f.Writers <= 0 {
		f.Writers = 8
	}
	if f.AppendsPerWriter <= 0 {
		f.AppendsPerWriter = 40
	}
	for _, tc := range contract {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f, newStore(t))
		})
	}
	for _, c := range capabilities {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			switch {
			case c.implements(s):
				c.fn(t, f, s)
			case c.claimed(f):
				t.Fatalf("the store claims %s, but %T does not implement eventsource.%s", c.name, s, c.iface)
			default:
				t.Skipf("%T does not implement eventsource.%s", s, c.iface)
			}
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rec returns a record with data and one metadata pair.
func rec(typ, data string) eventsource.Record {
	return eventsource.Record{Type: typ, Codec: "json", Data: []byte(data), Metadata: map[string]string{"k": typ}}
}

func recs(n int, typ string) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = rec(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func mustAppend(t *testing.T, s eventsource.Store, stream string, ev eventsource.ExpectedVersion, records ...eventsource.Record) eventsource.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, ev, records)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d records): %v", stream, ev, len(records), err)
	}
	return res
}

func readStream(t *testing.T, s eventsource.Store, stream string, from, to int64) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadStream(ctxFor(t), stream, from, to) {
		if err != nil {
			t.Fatalf("ReadStream(%q, %d, %d): %v", stream, from, to, err)
		}
		out = append(out, r)
	}
	return out
}

func readAll(t *testing.T, s eventsource.Store, from uint64, f eventsource.Filter) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadAll(ctxFor(t), from, f) {
		if err != nil {
			t.Fatalf("ReadAll(%d, %+v): %v", from, f, err)
		}
		out = append(out, r)
	}
	return out
}

func sameRecord(t *testing.T, got, want eventsource.Record) {
	t.Helper()
	if got.Type != want.Type || got.Codec != want.Codec || !bytes.Equal(got.Data, want.Data) || got.EventID != want.EventID {
		t.Fatalf("read back %q/%q/%q/%q, appended %q/%q/%q/%q",
			got.Type, got.Codec, got.Data, got.EventID, want.Type, want.Codec, want.Data, want.EventID)
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata read back %v, appended %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Fatalf("metadata read back %v, appended %v", got.Metadata, want.Metadata)
		}
	}
}
