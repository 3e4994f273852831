package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/eventsource-go/eventsource"
)

// tally is the aggregate of the snapshot property test: its state depends
// on every event and on their order.
type tally struct {
	Sum   int64
	Count int
	Trail string // the last few tags, in order
}

type tallied struct {
	eventsource.Model
	N   int64
	Tag string
}

type addN struct {
	eventsource.CommandModel
	Ns []int64
}

func (a *tally) On(e eventsource.Event) error {
	ev, ok := e.(*tallied)
	if !ok {
		return fmt.Errorf("unexpected %T", e)
	}
	a.Sum, a.Count = a.Sum*3+ev.N, a.Count+1
	a.Trail = (a.Trail + ev.Tag)[max(0, len(a.Trail)+len(ev.Tag)-12):]
	return nil
}

func (a *tally) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	c := cmd.(*addN)
	out := make([]eventsource.Event, len(c.Ns))
	for i, n := range c.Ns {
		out[i] = &tallied{N: n, Tag: fmt.Sprint(n % 10)}
	}
	return out, nil
}

// testSnapshotLoads is the property that makes snapshots safe: over random
// histories, saved in random batches with snapshots at random points (by
// policy and on demand), Load and LoadVersion of every version equal the
// same loads from the events alone. A snapshot of another schema is
// ignored, and replaced.
func testSnapshotLoads(t *testing.T, s eventsource.Store) {
	ctx := ctxFor(t)
	rng := rand.New(rand.NewPCG(42, 7))
	for round := 0; round < 6; round++ {
		id := fmt.Sprint("tally-", round)
		policy := eventsource.SnapshotPolicy{Every: 1 + rng.Int64N(7), Schema: 1}
		snapped := eventsource.New(&tally{}, eventsource.WithStore(s), eventsource.WithSnapshots(policy))
		plain := eventsource.New(&tally{}, eventsource.WithStore(s))
		for _, r := range []*eventsource.Repository[*tally]{snapped, plain} {
			if err := r.Bind(&tallied{}); err != nil {
				t.Fatal(err)
			}
		}
		for batch := 0; batch < 4+rng.IntN(8); batch++ {
			ns := make([]int64, 1+rng.IntN(4))
			for i := range ns {
				ns[i] = rng.Int64N(1000)
			}
			if _, err := snapped.Apply(ctx, &addN{CommandModel: eventsource.CommandModel{ID: id}, Ns: ns}); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(4) == 0 {
				if err := snapped.Snapshot(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		}
		want, err := plain.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := snapped.Load(ctx, id); err != nil || *got != *want {
			t.Fatalf("round %d (every %d): Load with snapshots %+v, %v; from events %+v", round, policy.Every, got, err, want)
		}
		for v := int64(1); v <= int64(want.Count); v++ {
			w, err := plain.LoadVersion(ctx, id, v)
			if err != nil {
				t.Fatal(err)
			}
			if g, err := snapped.LoadVersion(ctx, id, v); err != nil || *g != *w {
				t.Fatalf("round %d: LoadVersion(%d) with snapshots %+v, %v; from events %+v", round, v, g, err, w)
			}
		}
		// A repository of another snapshot schema ignores these snapshots,
		// loads from the events, and writes one of its own.
		newer := eventsource.New(&tally{}, eventsource.WithStore(s), eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 1, Schema: 2}))
		_ = newer.Bind(&tallied{})
		if got, err := newer.Load(ctx, id); err != nil || *got != *want || newer.SnapshotFallbacks() != 1 {
			t.Fatalf("round %d: Load with another schema %+v, %v (%d fallbacks counted); want %+v", round, got, err, newer.SnapshotFallbacks(), want)
		}
		ss, _ := eventsource.As[eventsource.SnapshotStore](s)
		snap, err := ss.LoadSnapshot(ctx, newer.StreamID(id), 0)
		if err != nil || snap.Schema != 2 || snap.Version != int64(want.Count) {
			t.Fatalf("round %d: after a load with schema 2 the newest snapshot is %+v, %v", round, snap, err)
		}
		// A snapshot records the position of the last event it includes.
		if at := readStream(t, s, newer.StreamID(id), snap.Version, snap.Version); len(at) != 1 || at[0].Position != snap.Position {
			t.Fatalf("round %d: snapshot at version %d records position %d; the event is at %v", round, snap.Version, snap.Position, at)
		}
	}
}
