package projection

import (
	"fmt"
	"strconv"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Condition selects records beyond what eventsource.Filter pushes down to
// the store: comparisons on metadata and on record fields.
type Condition func(r *eventsource.Record) bool

// Selector names a value of a record to compare: a metadata key or a field.
type Selector struct {
	name string
	get  func(r *eventsource.Record) (any, bool)
}

// Meta selects metadata value key. A record without the key matches only
// Ne and nothing else.
func Meta(key string) Selector {
	return Selector{"metadata " + key, func(r *eventsource.Record) (any, bool) {
		v, ok := r.Metadata[key]
		return v, ok
	}}
}

// Type selects the event type name.
func Type() Selector {
	return Selector{"type", func(r *eventsource.Record) (any, bool) { return r.Type, true }}
}

// Stream selects the stream ID.
func Stream() Selector {
	return Selector{"stream", func(r *eventsource.Record) (any, bool) { return r.StreamID, true }}
}

// Version selects the version in the stream.
func Version() Selector {
	return Selector{"version", func(r *eventsource.Record) (any, bool) { return r.Version, true }}
}

// RecordedAt selects the commit time; compare it with a time.Time.
func RecordedAt() Selector {
	return Selector{"recorded_at", func(r *eventsource.Record) (any, bool) { return r.RecordedAt, true }}
}

// Eq matches records whose value equals v.
func (s Selector) Eq(v any) Condition { return s.cmp(func(c int) bool { return c == 0 }, v) }

// Ne matches records whose value differs from v, or that lack it.
func (s Selector) Ne(v any) Condition {
	eq := s.Eq(v)
	return func(r *eventsource.Record) bool { return !eq(r) }
}

// Lt matches records whose value is less than v.
func (s Selector) Lt(v any) Condition { return s.cmp(func(c int) bool { return c < 0 }, v) }

// Le matches records whose value is at most v.
func (s Selector) Le(v any) Condition { return s.cmp(func(c int) bool { return c <= 0 }, v) }

// Gt matches records whose value is greater than v.
func (s Selector) Gt(v any) Condition { return s.cmp(func(c int) bool { return c > 0 }, v) }

// Ge matches records whose value is at least v.
func (s Selector) Ge(v any) Condition { return s.cmp(func(c int) bool { return c >= 0 }, v) }

// In matches records whose value equals one of vs.
func (s Selector) In(vs ...any) Condition {
	conds := make([]Condition, len(vs))
	for i, v := range vs {
		conds[i] = s.Eq(v)
	}
	return func(r *eventsource.Record) bool {
		for _, c := range conds {
			if c(r) {
				return true
			}
		}
		return false
	}
}

// Exists matches records that have the value (for metadata: the key).
func (s Selector) Exists() Condition {
	return func(r *eventsource.Record) bool { _, ok := s.get(r); return ok }
}

func (s Selector) cmp(ok func(int) bool, want any) Condition {
	return func(r *eventsource.Record) bool {
		got, present := s.get(r)
		if !present {
			return false
		}
		c, comparable := compare(got, want)
		return comparable && ok(c)
	}
}

// compare orders a record's value against a condition's: numbers
// numerically (metadata strings that parse as numbers count as numbers, also
// against a string that does), times chronologically, anything else as
// strings.
func compare(got, want any) (int, bool) {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		if !ok {
			s, isString := got.(string)
			if !isString {
				return 0, false
			}
			var err error
			if g, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return 0, false
			}
		}
		return g.Compare(w), true
	case string:
		if g, ok := got.(string); ok {
			gf, gerr := strconv.ParseFloat(g, 64)
			wf, werr := strconv.ParseFloat(w, 64)
			if gerr == nil && werr == nil {
				return cmpOrdered(gf, wf), true
			}
			return cmpOrdered(g, w), true
		}
	}
	wf, ok := number(want)
	if !ok {
		return cmpOrdered(fmt.Sprint(got), fmt.Sprint(want)), true
	}
	gf, ok := number(got)
	if !ok {
		return 0, false
	}
	return cmpOrdered(gf, wf), true
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case uint:
		return float64(v), true
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func cmpOrdered[T int | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func matchAll(conds []Condition, r *eventsource.Record) bool {
	for _, c := range conds {
		if !c(r) {
			return false
		}
	}
	return true
}
