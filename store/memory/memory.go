// Package memory is an in-memory eventsource.Store: the whole contract,
// including the global log, a live signal, stream listing, snapshots,
// reservations and the stream lifecycle, safe for concurrent use. It is
// meant for tests and for caches; nothing survives the process.
//
// Lifecycle: a stream's metadata and retention live beside its records;
// retired and deleted records stay in memory, hidden from every read, until
// Scavenge drops their payloads and frees their event IDs (their positions
// stay taken, as an empty slot of the log).
//
//	s := memory.New()
//	repo := eventsource.New(&User{}, eventsource.WithStore(s))
package memory

import (
	"cmp"
	"context"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
	"github.com/eventsource-go/eventsource/storekit"
)

// Store is an in-memory event store. Build it with New.
type Store struct {
	maxData int
	batch   int

	mu       sync.RWMutex
	log      chunks                            // the global log; position = index+1
	streams  map[string]*stream                // by stream ID
	ids      map[string]int                    // event ID -> index in log
	changed  *broadcast.Signal                 // fired by each append
	reserved map[reservation]string            // unique values → owner
	snaps    map[string][]eventsource.Snapshot // by stream, oldest first
	ruled    int                               // streams whose retention is not zero
	closed   bool
}

type entry struct {
	rec     eventsource.Record
	deleted bool
}

type reservation struct{ scope, value string }

// chunks is the global log in fixed-size pieces, so that growing it never
// copies what it holds.
type chunks struct {
	parts [][]entry
	n     int
}

const chunkSize = 4096

func (c *chunks) len() int { return c.n }

func (c *chunks) at(i int) *entry { return &c.parts[i/chunkSize][i%chunkSize] }

func (c *chunks) push(e entry) {
	if c.n%chunkSize == 0 {
		c.parts = append(c.parts, make([]entry, 0, chunkSize))
	}
	last := len(c.parts) - 1
	c.parts[last] = append(c.parts[last], e)
	c.n++
}

type stream struct {
	entries []int // indexes into log, in version order

	// Lifecycle (eventsource.StreamLifecycle): a stream may have metadata
	// and no events.
	md          eventsource.StreamMetadata
	metaVersion int64
	ret         storekit.Retention
}

func (s *stream) version() int64 { return int64(len(s.entries)) }

// Option configures a Store.
type Option func(*Store)

// WithMaxDataSize sets the largest Data a record may have
// (eventsource.DefaultMaxData by default).
func WithMaxDataSize(n int) Option { return func(s *Store) { s.maxData = n } }

// WithBatchSize sets how many records a read copies under the lock at a time
// (256 by default).
func WithBatchSize(n int) Option { return func(s *Store) { s.batch = n } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		maxData: eventsource.DefaultMaxData,
		batch:   256,
		streams: map[string]*stream{},
		ids:     map[string]int{},
		changed: broadcast.New(),
	}
	for _, o := range opts {
		o(s)
	}
	if s.batch < 1 {
		s.batch = 1
	}
	return s
}

// Close makes every later call fail with eventsource.ErrClosed and ends Notify channels.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.changed.Close()
	}
	return nil
}

func cloneRecord(r eventsource.Record) eventsource.Record {
	r.Data = slices.Clone(r.Data)
	if r.Data == nil {
		r.Data = []byte{}
	}
	r.Metadata = maps.Clone(r.Metadata)
	return r
}

// Append implements eventsource.Store.
func (s *Store) Append(ctx context.Context, id string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	recs := make([]eventsource.Record, len(records))
	copy(recs, records)
	if err := storekit.ValidateAppend(id, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	for i := range recs {
		recs[i] = cloneRecord(recs[i])
		recs[i].StreamID = id
	}
	storekit.BeforeCommit(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventsource.AppendResult{}, eventsource.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	st := s.streams[id]
	var current int64
	var ret storekit.Retention
	if st != nil {
		current, ret = st.version(), st.ret
	}
	if ret.Tombstoned() {
		return eventsource.AppendResult{}, storekit.Tombstoned(id)
	}
	if res, done, err := s.retried(id, ret.Expect(expected, current), recs); done {
		return res, err
	}
	if !ret.Expect(expected, current).Matches(current) {
		return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: id, Expected: expected, Actual: current}
	}
	if st == nil {
		st = &stream{}
		s.streams[id] = st
	}
	now := time.Now().UTC()
	res := eventsource.AppendResult{StreamID: id, FirstVersion: current + 1, FirstPosition: uint64(s.log.len()) + 1}
	for i := range recs {
		r := &recs[i]
		r.Version = current + int64(i) + 1
		r.Position = uint64(s.log.len()) + 1
		r.RecordedAt = now
		s.ids[r.EventID] = s.log.len()
		st.entries = append(st.entries, s.log.len())
		s.log.push(entry{rec: *r})
	}
	res.LastVersion = st.version()
	res.LastPosition = uint64(s.log.len())
	if st.md.MaxCount > 0 {
		s.setRetention(st, st.ret.Next(st.md, st.version(), false, now))
	}
	s.changed.Fire()
	return res, nil
}

// retried decides whether recs were stored already: done is false when none
// of their IDs is known; otherwise the append is either an exact retry (the
// original result) or a duplicate (storekit.ExactRetry). An ID once stored
// in a stream since deleted is never an exact retry.
func (s *Store) retried(id string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, bool, error) {
	first, found := s.ids[recs[0].EventID]
	if !found {
		for i := range recs[1:] {
			if _, dup := s.ids[recs[i+1].EventID]; dup {
				return eventsource.AppendResult{}, true, storekit.Duplicate(id, recs[i+1].EventID, i+1)
			}
		}
		return eventsource.AppendResult{}, false, nil
	}
	stored := s.log.at(first)
	var following []eventsource.Record
	if st := s.streams[id]; st != nil && !stored.deleted && stored.rec.StreamID == id {
		for i := int(stored.rec.Version) - 1; i < len(st.entries) && len(following) < len(recs); i++ {
			following = append(following, s.log.at(st.entries[i]).rec)
		}
	}
	res, err := storekit.ExactRetry(id, expected, storekit.EventIDs(recs), stored.rec, following)
	return res, true, err
}

// ReadStream implements eventsource.Store.
func (s *Store) ReadStream(ctx context.Context, id string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := eventsource.ValidateStreamID(id); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if from < 1 {
			from = 1
		}
		next := from
		for {
			if err := ctx.Err(); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			batch, last, err := s.streamBatch(id, next, to)
			if err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			for _, r := range batch {
				if !yield(r, nil) {
					return
				}
			}
			if last == 0 {
				return
			}
			next = last + 1
		}
	}
}

// streamBatch returns the visible records among up to s.batch versions of
// stream id from version from, and the last version it looked at (0 when it
// reached the end).
func (s *Store) streamBatch(id string, from, to int64) ([]eventsource.Record, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, eventsource.ErrClosed
	}
	st := s.streams[id]
	if st != nil && st.ret.Tombstoned() {
		return nil, 0, storekit.Tombstoned(id)
	}
	if st == nil {
		return nil, 0, nil
	}
	from = max(from, st.ret.Cut)
	end := st.version()
	if to > 0 && to < end {
		end = to
	}
	if from > end {
		return nil, 0, nil
	}
	last := int64(0)
	if end-from+1 > int64(s.batch) {
		end = from + int64(s.batch) - 1
		last = end
	}
	out := make([]eventsource.Record, 0, max(end-from+1, 0))
	now := time.Now()
	for v := from; v <= end; v++ {
		if e := s.log.at(st.entries[v-1]); st.ret.Visible(v, e.rec.RecordedAt, now) {
			out = append(out, cloneRecord(e.rec))
		}
	}
	return out, last, nil
}

// ReadAll implements eventsource.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if from < 1 {
			from = 1
		}
		next := from
		for {
			if err := ctx.Err(); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			batch, scanned, err := s.logBatch(next, &f)
			if err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			for _, r := range batch {
				if !yield(r, nil) {
					return
				}
			}
			if scanned == 0 {
				return
			}
			next += scanned
		}
	}
}

// logBatch returns the matching records among up to s.batch*8 entries from
// position from, and how many positions it looked at.
func (s *Store) logBatch(from uint64, f *eventsource.Filter) ([]eventsource.Record, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, eventsource.ErrClosed
	}
	if from > uint64(s.log.len()) {
		return nil, 0, nil
	}
	var out []eventsource.Record
	i := from - 1
	limit := min(uint64(s.log.len()), i+uint64(s.batch)*8)
	now := time.Now()
	for ; i < limit && len(out) < s.batch; i++ {
		e := s.log.at(int(i))
		if e.deleted || !f.Match(&e.rec) {
			continue
		}
		if s.ruled > 0 {
			if st := s.streams[e.rec.StreamID]; !st.ret.Visible(e.rec.Version, e.rec.RecordedAt, now) {
				continue
			}
		}
		out = append(out, cloneRecord(e.rec))
	}
	return out, i - (from - 1), nil
}

// Notify implements eventsource.Notifier.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventsource.ErrClosed
	}
	return s.changed.Subscribe(ctx, 0, nil), nil
}

// Head implements eventsource.HeadReader.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, eventsource.ErrClosed
	}
	return uint64(s.log.len()), nil
}

// ListStreams implements eventsource.StreamLister.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return func(yield func(eventsource.StreamInfo, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(eventsource.StreamInfo{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(eventsource.StreamInfo{}, eventsource.ErrClosed)
			return
		}
		var infos []eventsource.StreamInfo
		for id, st := range s.streams {
			if strings.HasPrefix(id, prefix) && !st.ret.Absent(st.version()) {
				infos = append(infos, eventsource.StreamInfo{StreamID: id, Version: st.version()})
			}
		}
		s.mu.RUnlock()
		sort.Slice(infos, func(i, j int) bool { return infos[i].StreamID < infos[j].StreamID })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete (see
// eventsource.StreamLifecycle).
func (s *Store) DeleteStream(ctx context.Context, id string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	return s.lifecycle(ctx, id, func(st *stream) error {
		if err := st.ret.CheckDelete(id, expected, st.version()); err != nil {
			return err
		}
		s.setMetadata(st, storekit.SoftDelete(st.md, st.version()), false)
		delete(s.snaps, id)
		return nil
	})
}

// TombstoneStream implements eventsource.StreamLifecycle.
func (s *Store) TombstoneStream(ctx context.Context, id string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	return s.lifecycle(ctx, id, func(st *stream) error {
		if err := st.ret.CheckTombstone(id, expected, st.version()); err != nil {
			return err
		}
		s.setMetadata(st, st.md, true)
		delete(s.snaps, id)
		return nil
	})
}

// StreamMetadata implements eventsource.StreamLifecycle.
func (s *Store) StreamMetadata(ctx context.Context, id string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(id); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventsource.StreamMetadata{}, 0, eventsource.ErrClosed
	}
	st := s.streams[id]
	if st == nil {
		return eventsource.StreamMetadata{}, 0, nil
	}
	if st.ret.Tombstoned() {
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(id)
	}
	md := st.md
	md.Values = maps.Clone(md.Values)
	return md, st.metaVersion, nil
}

// SetStreamMetadata implements eventsource.StreamLifecycle.
func (s *Store) SetStreamMetadata(ctx context.Context, id string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateExpected(expected); err != nil {
		return 0, err
	}
	if err := storekit.ValidateStreamMetadata(id, md); err != nil {
		return 0, err
	}
	var version int64
	err := s.lifecycle(ctx, id, func(st *stream) error {
		if err := storekit.CheckMetadataVersion(id, expected, st.metaVersion); err != nil {
			return err
		}
		md.Values = maps.Clone(md.Values)
		s.setMetadata(st, md, false)
		version = st.metaVersion
		return nil
	})
	return version, err
}

// lifecycle runs fn on stream id (created empty if need be) under the write
// lock, refusing a tombstoned stream.
func (s *Store) lifecycle(ctx context.Context, id string, fn func(*stream) error) error {
	if err := eventsource.ValidateStreamID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventsource.ErrClosed
	}
	st := s.streams[id]
	if st == nil {
		st = &stream{}
	}
	if st.ret.Tombstoned() {
		return storekit.Tombstoned(id)
	}
	if err := fn(st); err != nil {
		return err
	}
	s.streams[id] = st
	return nil
}

// setMetadata writes a stream's metadata (a new metadata version) and
// moves its retention.
func (s *Store) setMetadata(st *stream, md eventsource.StreamMetadata, tombstone bool) {
	st.md = md
	st.metaVersion++
	s.setRetention(st, st.ret.Next(md, st.version(), tombstone, time.Now()))
}

func (s *Store) setRetention(st *stream, r storekit.Retention) {
	if st.ret.IsZero() && !r.IsZero() {
		s.ruled++
	}
	st.ret = r
}

// Scavenge implements eventsource.Scavenger: it drops the payloads of
// retired records and forgets their event IDs (their positions stay taken).
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	s.mu.RLock()
	var ids []string
	for id, st := range s.streams {
		if !st.ret.IsZero() && id > opts.After {
			ids = append(ids, id)
		}
	}
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return res, eventsource.ErrClosed
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		s.mu.Lock()
		st, now := s.streams[id], time.Now()
		for i, at := range st.entries {
			if e := s.log.at(at); !e.deleted && !st.ret.Visible(int64(i+1), e.rec.RecordedAt, now) {
				delete(s.ids, e.rec.EventID)
				*e = entry{deleted: true} // drop the payload; the position stays taken
				res.Removed++
			}
		}
		s.mu.Unlock()
		res.Streams++
		res.Last = id
		if opts.Progress != nil {
			opts.Progress(res)
		}
	}
	return res, nil
}

// SaveSnapshot implements eventsource.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventsource.Snapshot) error {
	if err := storekit.ValidateSnapshot(snap, s.Limits()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	snap.Data = slices.Clone(snap.Data)
	snap.RecordedAt = time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventsource.ErrClosed
	}
	if s.snaps == nil {
		s.snaps = map[string][]eventsource.Snapshot{}
	}
	list := s.snaps[snap.StreamID]
	i, found := slices.BinarySearchFunc(list, snap.Version, func(x eventsource.Snapshot, v int64) int { return cmp.Compare(x.Version, v) })
	if found {
		list[i] = snap
	} else {
		list = slices.Insert(list, i, snap)
	}
	s.snaps[snap.StreamID] = list
	return nil
}

// LoadSnapshot implements eventsource.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, atMost int64) (eventsource.Snapshot, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventsource.Snapshot{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventsource.Snapshot{}, eventsource.ErrClosed
	}
	list := s.snaps[stream]
	for i := len(list) - 1; i >= 0; i-- {
		if atMost <= 0 || list[i].Version <= atMost {
			snap := list[i]
			snap.Data = slices.Clone(snap.Data)
			return snap, nil
		}
	}
	return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
}

func (s *Store) reservations() storekit.Reservations {
	locked := func(write bool, f func() error) error {
		if write {
			s.mu.Lock()
			defer s.mu.Unlock()
		} else {
			s.mu.RLock()
			defer s.mu.RUnlock()
		}
		if s.closed {
			return eventsource.ErrClosed
		}
		return f()
	}
	return storekit.Reservations{
		Insert: func(_ context.Context, scope, value, owner string) (inserted bool, err error) {
			err = locked(true, func() error {
				k := reservation{scope, value}
				if _, taken := s.reserved[k]; !taken {
					if s.reserved == nil {
						s.reserved = map[reservation]string{}
					}
					s.reserved[k], inserted = owner, true
				}
				return nil
			})
			return inserted, err
		},
		Delete: func(_ context.Context, scope, value, owner string) (deleted bool, err error) {
			err = locked(true, func() error {
				k := reservation{scope, value}
				if cur, ok := s.reserved[k]; ok && cur == owner {
					delete(s.reserved, k)
					deleted = true
				}
				return nil
			})
			return deleted, err
		},
		Owner: func(_ context.Context, scope, value string) (owner string, found bool, err error) {
			err = locked(false, func() error {
				owner, found = s.reserved[reservation{scope, value}]
				return nil
			})
			return owner, found, err
		},
	}
}

// Reserve implements eventsource.Reserver.
func (s *Store) Reserve(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Reserve(ctx, scope, value, owner)
}

// Release implements eventsource.Reserver.
func (s *Store) Release(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Release(ctx, scope, value, owner)
}

// Owner implements eventsource.Reserver.
func (s *Store) Owner(ctx context.Context, scope, value string) (string, error) {
	return s.reservations().Get(ctx, scope, value)
}
