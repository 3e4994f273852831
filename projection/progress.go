package projection

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Range is the closed range of global positions [From, To].
type Range struct {
	From uint64 `json:"f"`
	To   uint64 `json:"t"`
}

// ranges is a sorted set of positions kept as disjoint, non-adjacent
// ranges.
type ranges []Range

func (rs ranges) contains(p uint64) bool {
	i, ok := slices.BinarySearchFunc(rs, p, func(r Range, p uint64) int {
		switch {
		case r.To < p:
			return -1
		case r.From > p:
			return 1
		}
		return 0
	})
	return ok && i < len(rs)
}

// add returns rs with p in it.
func (rs ranges) add(p uint64) ranges {
	i, _ := slices.BinarySearchFunc(rs, p, func(r Range, p uint64) int {
		if r.To < p {
			return -1
		}
		if r.From > p {
			return 1
		}
		return 0
	})
	if i < len(rs) && rs[i].From <= p && p <= rs[i].To {
		return rs
	}
	joinLeft := i > 0 && rs[i-1].To+1 == p
	joinRight := i < len(rs) && rs[i].From == p+1
	switch {
	case joinLeft && joinRight:
		rs[i-1].To = rs[i].To
		return slices.Delete(rs, i, i+1)
	case joinLeft:
		rs[i-1].To = p
	case joinRight:
		rs[i].From = p
	default:
		rs = slices.Insert(rs, i, Range{p, p})
	}
	return rs
}

// union returns the ranges holding every position of each of rss.
func union(rss ...[]Range) ranges {
	var all []Range
	for _, rs := range rss {
		all = append(all, rs...)
	}
	slices.SortFunc(all, func(a, b Range) int { return cmpUint(a.From, b.From) })
	var out ranges
	for _, r := range all {
		if n := len(out); n > 0 && r.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// above returns the part of rs above p.
func (rs ranges) above(p uint64) ranges {
	out := rs[:0:0]
	for _, r := range rs {
		if r.To <= p {
			continue
		}
		r.From = max(r.From, p+1)
		out = append(out, r)
	}
	return out
}

// Digest is the running digest of the events a projection handled with
// positions in [From, To]: how many, and the sum (modulo 2⁶⁴) of a 64-bit
// hash of each event ID. A sum does not depend on the order events were
// handled in, so parallel workers can add to it in any order; an event
// missed or handled twice changes the count.
type Digest struct {
	From  uint64 `json:"f"`
	To    uint64 `json:"t"`
	Count uint64 `json:"n"`
	Sum   uint64 `json:"s"`
}

// eventHash is the 64-bit hash of a record a digest sums.
func eventHash(r *eventsource.Record) uint64 {
	h := fnv.New64a()
	if r.EventID != "" {
		h.Write([]byte(r.EventID))
	} else {
		fmt.Fprintf(h, "%s\x00%d", r.StreamID, r.Version)
	}
	return h.Sum64()
}

// addDigest adds r to the digest whose range holds its position, or to a
// new one for its cell of n positions. Ranges are unions of whole cells
// (compactDigests joins cells, never splits them), so a new cell never
// overlaps a range.
func addDigest(ds []Digest, n uint64, r *eventsource.Record) []Digest {
	i, ok := findDigest(ds, r.Position)
	if !ok {
		from := (r.Position-1)/n*n + 1
		ds = slices.Insert(ds, i, Digest{From: from, To: from + n - 1})
	}
	ds[i].Count++
	ds[i].Sum += eventHash(r)
	return ds
}

// findDigest returns the index of the digest whose range holds pos, or
// where one for it would go.
func findDigest(ds []Digest, pos uint64) (int, bool) {
	return slices.BinarySearchFunc(ds, pos, func(d Digest, pos uint64) int {
		switch {
		case d.To < pos:
			return -1
		case d.From > pos:
			return 1
		}
		return 0
	})
}

// compactDigests joins neighbouring digests that lie wholly at or below
// low (no event can be added to them any more) while the joined count
// stays within limit, in one pass from the left, so the ranges do not
// depend on when the passes ran. Where positions are sparse (PostgreSQL's
// are a transaction ID and an index), a cell of n positions holds one
// event or a few; joined, the digests stay about one per limit events.
func compactDigests(ds []Digest, low, limit uint64) []Digest {
	if len(ds) < 2 {
		return ds
	}
	out := ds[:1]
	for _, d := range ds[1:] {
		last := &out[len(out)-1]
		if d.To <= low && last.Count+d.Count <= limit {
			last.To, last.Count, last.Sum = d.To, last.Count+d.Count, last.Sum+d.Sum
			continue
		}
		out = append(out, d)
	}
	return out
}

// ParkedEvent is an event a projector set aside: its handler kept failing
// after the error policy's retries (Behind is 0), or it waits behind such
// an event of its partition key (Behind names that event's position).
type ParkedEvent struct {
	Position uint64    `json:"p"`
	Stream   string    `json:"s"`
	Type     string    `json:"y"`
	Key      string    `json:"k"`
	Error    string    `json:"e,omitempty"`
	Attempts int       `json:"a,omitempty"`
	At       time.Time `json:"at"`
	Behind   uint64    `json:"b,omitempty"`
	// Replay is set by ReplayParked: the running projector applies the
	// event again (and parks it again if it still fails).
	Replay bool `json:"r,omitempty"`
}

// progress is what a checkpoint keeps beyond its position, as one encoded
// value (MarshalProgress).
type progress struct {
	Done        ranges              `json:"done,omitempty"`
	Digests     []Digest            `json:"digests,omitempty"`
	DigestFrom  uint64              `json:"digest_from,omitempty"`
	DigestRange uint64              `json:"digest_range,omitempty"`
	Filter      *eventsource.Filter `json:"filter,omitempty"`
	Parked      []ParkedEvent       `json:"parked,omitempty"`
	Live        int                 `json:"live,omitempty"`
	Horizon     uint64              `json:"horizon,omitempty"`
	HorizonDone ranges              `json:"horizon_done,omitempty"`
	Version     int                 `json:"version,omitempty"`
}

// MarshalProgress encodes what a checkpoint keeps beyond its position
// (Done, Digests, Parked, Live, …) as one value a checkpoint store saves
// in a single column; nil when there is none. Checkpoint stores call it in
// Save, SaveTx and WriteTx, and UnmarshalProgress when they load.
func MarshalProgress(cp Checkpoint) ([]byte, error) {
	p := progress{
		Done: cp.Done, Digests: cp.Digests, DigestFrom: cp.DigestsFrom, DigestRange: cp.DigestRange, Filter: cp.Filter,
		Parked: cp.Parked, Live: cp.Live, Horizon: cp.Horizon, HorizonDone: cp.HorizonDone, Version: cp.Version,
	}
	if p.Filter != nil && p.Filter.IsZero() {
		p.Filter = nil
	}
	if len(p.Done) == 0 && len(p.Digests) == 0 && p.DigestFrom == 0 && p.DigestRange == 0 && p.Filter == nil && len(p.Parked) == 0 &&
		p.Live == 0 && p.Horizon == 0 && len(p.HorizonDone) == 0 && p.Version == 0 {
		return nil, nil
	}
	return json.Marshal(p)
}

// UnmarshalProgress decodes b, written by MarshalProgress, into cp.
func UnmarshalProgress(b []byte, cp *Checkpoint) error {
	if len(b) == 0 {
		return nil
	}
	var p progress
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("%w: projection %q progress: %w", eventsource.ErrCorruptData, cp.Name, err)
	}
	cp.Done, cp.Digests, cp.DigestsFrom, cp.DigestRange, cp.Filter = p.Done, p.Digests, p.DigestFrom, p.DigestRange, p.Filter
	cp.Parked, cp.Live, cp.Horizon, cp.HorizonDone, cp.Version = p.Parked, p.Live, p.Horizon, p.HorizonDone, p.Version
	return nil
}

// cloneProgress returns cp with its slices copied.
func cloneProgress(cp Checkpoint) Checkpoint {
	cp.Done = slices.Clone(cp.Done)
	cp.Digests = slices.Clone(cp.Digests)
	cp.Parked = slices.Clone(cp.Parked)
	cp.HorizonDone = slices.Clone(cp.HorizonDone)
	if cp.Filter != nil {
		f := *cp.Filter
		cp.Filter = &f
	}
	return cp
}
