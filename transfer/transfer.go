// Package transfer moves records between stores as NDJSON: Export writes a
// stream, a category or the whole global log, one JSON object per line;
// Import appends such a file to any store, keeping each record's event ID,
// stream, version, type, codec, data and metadata byte for byte (positions
// and recording times are the target's). Importing the same file again
// changes nothing: each append is an exact retry of the one before.
//
// A line:
//
//	{"event_id":"…","stream":"account-7","version":3,"type":"MoneyDeposited","codec":"json",
//	 "data":{"Amount":100},"metadata":{"teller":"7"},"recorded_at":"…","position":1207}
//
// data is the event's bytes as JSON when they are JSON that reads back
// byte-identical; otherwise data_base64 holds them (binary codecs, encrypted
// data, JSON with insignificant white space).
package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Line is one record of an NDJSON export.
type Line struct {
	EventID    string            `json:"event_id"`
	Stream     string            `json:"stream"`
	Version    int64             `json:"version"`
	Type       string            `json:"type"`
	Codec      string            `json:"codec,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	DataBase64 []byte            `json:"data_base64,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	RecordedAt time.Time         `json:"recorded_at"`
	Position   uint64            `json:"position"` // in the source store
}

// LineOf is r as an export writes it.
func LineOf(r eventsource.Record) Line {
	l := Line{EventID: r.EventID, Stream: r.StreamID, Version: r.Version, Type: r.Type, Codec: r.Codec,
		Metadata: r.Metadata, RecordedAt: r.RecordedAt, Position: r.Position}
	if asJSON(r.Data) {
		l.Data = r.Data
	} else {
		l.DataBase64 = r.Data
	}
	return l
}

// asJSON reports whether b reads back byte-identical when written as JSON:
// valid, compact, and without the characters an encoder escapes.
func asJSON(b []byte) bool {
	if len(b) == 0 || !json.Valid(b) {
		return false
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil || !bytes.Equal(c.Bytes(), b) {
		return false
	}
	return !bytes.ContainsAny(b, "<>&") && !bytes.Contains(b, []byte("\u2028")) && !bytes.Contains(b, []byte("\u2029"))
}

// Record is l as a record to append (no position or time: the target
// assigns them).
func (l Line) Record() eventsource.Record {
	data := []byte(l.Data)
	if l.Data == nil {
		data = l.DataBase64
	}
	return eventsource.Record{StreamID: l.Stream, Version: l.Version, EventID: l.EventID, Type: l.Type, Codec: l.Codec, Data: data, Metadata: l.Metadata}
}

// Selection is what Export writes: one stream, the streams of a category
// (an ID prefix), or the whole log; From skips positions below it (the log
// and categories only).
type Selection struct {
	Stream   string
	Category string
	From     uint64
}

// Export writes the records sel names to w as NDJSON, in log order (a
// stream's in version order), and returns how many. progress, when not
// nil, is called after each record.
func Export(ctx context.Context, s eventsource.Store, w io.Writer, sel Selection, progress func(n int)) (int, error) {
	if sel.Stream != "" && sel.Category != "" {
		return 0, fmt.Errorf("%w: export: a stream or a category, not both", eventsource.ErrInvalidConfig)
	}
	var records func(yield func(eventsource.Record, error) bool)
	switch {
	case sel.Stream != "":
		if err := eventsource.ValidateStreamID(sel.Stream); err != nil {
			return 0, err
		}
		records = s.ReadStream(ctx, sel.Stream, 1, 0)
	case sel.Category != "":
		records = s.ReadAll(ctx, max(sel.From, 1), eventsource.Filter{StreamPrefixes: []string{sel.Category}})
	default:
		records = s.ReadAll(ctx, max(sel.From, 1), eventsource.Filter{})
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	for r, err := range records {
		if err != nil {
			return n, err
		}
		if err := enc.Encode(LineOf(r)); err != nil {
			return n, fmt.Errorf("export: write record %d (%q version %d): %w", n+1, r.StreamID, r.Version, err)
		}
		n++
		if progress != nil {
			progress(n)
		}
	}
	return n, bw.Flush()
}

// ImportError is an import that stopped at a line: the line's number (from
// 1), its stream and version, and why.
type ImportError struct {
	Line    int
	Stream  string
	Version int64
	Err     error
}

func (e *ImportError) Error() string {
	if e.Stream == "" {
		return fmt.Sprintf("import: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("import: line %d (%q version %d): %v", e.Line, e.Stream, e.Version, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// ErrBadLine: a line of an import is not a record (not JSON, no stream,
// type or event ID, a version below 1).
var ErrBadLine = errors.New("transfer: not a record")

// maxBatch bounds the records of one append.
const maxBatch = 500

// Import appends the records of an NDJSON export read from r to s, each at
// its version with its event ID, and returns how many lines it read.
// Consecutive records of one stream go in one append (at most 500, within
// the store's limits); a stream that already holds the same events (an
// import run again, in whole or in part) takes them as exact retries. A
// stream that holds other events at those versions is an *ImportError
// wrapping *eventsource.ConcurrencyError; what was appended before stays.
// progress, when not nil, is called after each append.
func Import(ctx context.Context, s eventsource.Store, r io.Reader, progress func(n int)) (int, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	ap := newAppender(s)
	n := 0
	for {
		var l Line
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, &ImportError{Line: n + 1, Err: fmt.Errorf("%w: %v", ErrBadLine, err)}
		}
		n++
		switch {
		case l.Stream == "" || l.Type == "" || l.EventID == "":
			return n - 1, &ImportError{Line: n, Stream: l.Stream, Version: l.Version, Err: fmt.Errorf("%w: it needs a stream, a type and an event ID", ErrBadLine)}
		case l.Version < 1:
			return n - 1, &ImportError{Line: n, Stream: l.Stream, Version: l.Version, Err: fmt.Errorf("%w: version %d", ErrBadLine, l.Version)}
		case l.Data != nil && l.DataBase64 != nil:
			return n - 1, &ImportError{Line: n, Stream: l.Stream, Version: l.Version, Err: fmt.Errorf("%w: both data and data_base64", ErrBadLine)}
		}
		flushed, err := ap.add(ctx, l.Record(), n)
		if err != nil {
			return n - 1 - ap.pending(), err
		}
		if flushed && progress != nil {
			progress(n - 1)
		}
	}
	if err := ap.flush(ctx); err != nil {
		return n - ap.pending(), err
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// appender gathers records into appends: consecutive versions of one
// stream, at most maxBatch records and the store's limits per append.
type appender struct {
	s         eventsource.Store
	batchMax  int
	bytesMax  int
	batch     []eventsource.Record
	bytes     int
	firstLine int
}

func newAppender(s eventsource.Store) *appender {
	lim := eventsource.LimitsOf(s)
	return &appender{s: s, batchMax: min(maxBatch, lim.MaxRecordsPerAppend), bytesMax: lim.MaxAppendBytes}
}

func (a *appender) pending() int { return len(a.batch) }

// add queues rec (line numbers the record for errors), appending what was
// queued first when rec does not join it; flushed says it did.
func (a *appender) add(ctx context.Context, rec eventsource.Record, line int) (flushed bool, err error) {
	size := len(rec.Data) + 64
	for k, v := range rec.Metadata {
		size += len(k) + len(v)
	}
	if n := len(a.batch); n > 0 {
		last := a.batch[n-1]
		if last.StreamID != rec.StreamID || last.Version+1 != rec.Version || n == a.batchMax || a.bytes+size > a.bytesMax {
			if err := a.flush(ctx); err != nil {
				return false, err
			}
			flushed = true
		}
	}
	if len(a.batch) == 0 {
		a.firstLine = line
	}
	a.batch = append(a.batch, rec)
	a.bytes += size
	return flushed, nil
}

// flush appends what is queued.
func (a *appender) flush(ctx context.Context) error {
	if len(a.batch) == 0 {
		return nil
	}
	if err := importBatch(ctx, a.s, a.batch, a.firstLine); err != nil {
		return err
	}
	a.batch, a.bytes = a.batch[:0], 0
	return nil
}

// importBatch appends batch (one stream, consecutive versions) at its
// versions. When the stream already holds some of them (a file imported
// before with other batch bounds), it goes record by record, each an
// exact retry or new.
func importBatch(ctx context.Context, s eventsource.Store, batch []eventsource.Record, firstLine int) error {
	stream, first := batch[0].StreamID, batch[0].Version
	recs := make([]eventsource.Record, len(batch))
	for i, r := range batch {
		r.StreamID, r.Version = "", 0 // the store assigns them: the append's stream, expected+1+i
		recs[i] = r
	}
	_, err := s.Append(ctx, stream, eventsource.Exact(first-1), recs)
	if err == nil {
		return nil
	}
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ce) && !errors.Is(err, eventsource.ErrDuplicateEvent) {
		return &ImportError{Line: firstLine, Stream: stream, Version: first, Err: err}
	}
	for i, rec := range recs {
		v := first + int64(i)
		if _, err := s.Append(ctx, stream, eventsource.Exact(v-1), []eventsource.Record{rec}); err != nil {
			return &ImportError{Line: firstLine + i, Stream: stream, Version: v, Err: err}
		}
	}
	return nil
}

// CopyOptions steer Copy.
type CopyOptions struct {
	// From is the first source position to copy (1).
	From uint64
	// Checkpoint, when not nil, is called with the last source position
	// copied after each append to the target, to be saved and given back as
	// From+1 on the next run. Without it a copy starts again from From, which
	// is safe (the appends are exact retries) but reads everything again.
	Checkpoint func(position uint64) error
}

// Copy follows the global log of from into to, record by record as
// Import appends them (event IDs, versions, data and metadata kept;
// positions are the target's), until it has read everything committed,
// and returns the last source position it copied (From-1 when nothing was
// new). Run again with From after that position, or on a timer, it is a
// live migration path between any two stores. A target stream that holds
// other events at those versions stops it with an *ImportError whose Line
// counts the records this call read.
func Copy(ctx context.Context, from, to eventsource.Store, o CopyOptions) (uint64, error) {
	last := max(o.From, 1) - 1
	ap := newAppender(to)
	copied := func(pos uint64) error { // everything up to pos is in the target
		last = pos
		if o.Checkpoint != nil {
			return o.Checkpoint(pos)
		}
		return nil
	}
	var prev uint64 // source position of the record queued before this one
	n := 0
	for r, err := range from.ReadAll(ctx, last+1, eventsource.Filter{}) {
		if err != nil {
			return last, err
		}
		n++
		flushed, err := ap.add(ctx, LineOf(r).Record(), n)
		if err != nil {
			return last, err
		}
		if flushed {
			if err := copied(prev); err != nil {
				return last, err
			}
		}
		prev = r.Position
	}
	if ap.pending() == 0 {
		return last, nil
	}
	if err := ap.flush(ctx); err != nil {
		return last, err
	}
	err := copied(prev)
	return last, err
}
