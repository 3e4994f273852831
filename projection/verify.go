package projection

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/eventsource-go/eventsource"
)

// VerifyReport is what Verify found: for each range of positions whose
// digest of handled events differs from the one recomputed from the log,
// a Mismatch.
type VerifyReport struct {
	Name       string
	From, To   uint64 // the positions checked: from where digests start to the last handled
	Ranges     int    // ranges compared
	Events     uint64 // events of the log in them
	Mismatches []Mismatch
}

// OK reports whether every range matched.
func (r VerifyReport) OK() bool { return len(r.Mismatches) == 0 }

// Mismatch is a range whose digests differ: Want is what the log holds,
// Got what the projection handled.
type Mismatch struct {
	From, To  uint64
	Want, Got Digest
}

func (m Mismatch) String() string {
	switch {
	case m.Got.Count < m.Want.Count:
		return fmt.Sprintf("positions %d–%d: %d of %d events missed", m.From, m.To, m.Want.Count-m.Got.Count, m.Want.Count)
	case m.Got.Count > m.Want.Count:
		return fmt.Sprintf("positions %d–%d: %d events handled more than once (or no longer in the log)", m.From, m.To, m.Got.Count-m.Want.Count)
	}
	return fmt.Sprintf("positions %d–%d: as many events as the log, but not the same ones", m.From, m.To)
}

// Verify checks projector name's delivery: it recomputes, from the log, the
// digest of the events the checkpoint says were handled (every position
// below its low-water mark and those it handled above, through the store
// filter it ran with) and compares it, range by range, with the digests the
// projector committed with its read model. A range where an event was
// missed or handled twice is a Mismatch. Events removed from the log since
// (a scavenge, a truncation) show as handled more than once.
func Verify(ctx context.Context, events eventsource.Store, cps CheckpointStore, name string) (VerifyReport, error) {
	cp, err := cps.Load(ctx, name)
	if err != nil {
		return VerifyReport{}, err
	}
	return verifyCheckpoint(ctx, events, cp)
}

// verifyCheckpoint is Verify of checkpoint cp.
func verifyCheckpoint(ctx context.Context, events eventsource.Store, cp Checkpoint) (VerifyReport, error) {
	rep := VerifyReport{Name: cp.Name}
	if cp.DigestsFrom == 0 || cp.DigestRange == 0 {
		return rep, nil // never run with digests
	}
	done := ranges(cp.Done)
	to := cp.Position
	if len(done) > 0 {
		to = max(to, done[len(done)-1].To)
	}
	rep.From, rep.To = cp.DigestsFrom, to
	if to < cp.DigestsFrom {
		return rep, nil
	}
	var filter eventsource.Filter
	if cp.Filter != nil {
		filter = *cp.Filter
	}
	// The log's events go into the checkpoint's ranges (cells joined by
	// compactDigests), and those outside every range into cells of their own.
	want := make([]Digest, len(cp.Digests))
	for i, d := range cp.Digests {
		want[i] = Digest{From: d.From, To: d.To}
	}
	var outside []Digest
	for r, err := range events.ReadAll(ctx, cp.DigestsFrom, filter) {
		if err != nil {
			return rep, err
		}
		if r.Position > to {
			break
		}
		if r.Position <= cp.Position || done.contains(r.Position) {
			if i, ok := findDigest(want, r.Position); ok {
				want[i].Count++
				want[i].Sum += eventHash(&r)
			} else {
				outside = addDigest(outside, cp.DigestRange, &r)
			}
			rep.Events++
		}
	}
	want = slices.DeleteFunc(want, func(d Digest) bool { return d.Count == 0 })
	want = append(want, outside...)
	slices.SortFunc(want, func(a, b Digest) int { return cmpUint(a.From, b.From) })
	got := slices.Clone(cp.Digests)
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		var w, g Digest
		switch {
		case j == len(got) || (i < len(want) && want[i].From < got[j].From):
			w = want[i]
			g = Digest{From: w.From, To: w.To}
			i++
		case i == len(want) || got[j].From < want[i].From:
			g = got[j]
			w = Digest{From: g.From, To: g.To}
			j++
		default:
			w, g = want[i], got[j]
			i++
			j++
		}
		rep.Ranges++
		if w.Count != g.Count || w.Sum != g.Sum {
			rep.Mismatches = append(rep.Mismatches, Mismatch{From: max(w.From, cp.DigestsFrom), To: min(w.To, to), Want: w, Got: g})
		}
	}
	return rep, nil
}

// Verify checks this projector's delivery (see Verify).
func (p *Projector[Tx]) Verify(ctx context.Context) (VerifyReport, error) {
	return Verify(ctx, p.events, p.cps, p.name)
}

// IncompleteError is returned by Run of a new version (WithVersion) whose
// delivery check failed when it caught up: it does not take over, and the
// version serving reads goes on. It matches ErrIncomplete.
type IncompleteError struct {
	Name    string
	Version int
	Report  VerifyReport
}

func (e *IncompleteError) Error() string {
	ms := make([]string, len(e.Report.Mismatches))
	for i, m := range e.Report.Mismatches {
		ms[i] = m.String()
	}
	return fmt.Sprintf("%v: %q version %d did not take over: %s", ErrIncomplete, e.Name, e.Version, strings.Join(ms, "; "))
}

func (e *IncompleteError) Unwrap() error { return ErrIncomplete }
