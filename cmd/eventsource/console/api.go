package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// page reads ?limit= (default 100, at most MaxPage).
func (s *Server) page(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return min(100, s.cfg.MaxPage), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit %q: want a number from 1 to %d", v, s.cfg.MaxPage)
	}
	return min(n, s.cfg.MaxPage), nil
}

// pageFrom reads ?limit= and ?from= (1 when absent or 0).
func (s *Server) pageFrom(r *http.Request) (int, uint64, error) {
	limit, err := s.page(r)
	if err != nil {
		return 0, 0, err
	}
	from, err := uintParam(r, "from", 1)
	return limit, max(from, 1), err
}

// uintParam reads a non-negative integer parameter, def when absent.
func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", name, v)
	}
	return n, nil
}

// streamPage is a page of streams.
type streamPage struct {
	Streams []eventsource.StreamInfo `json:"streams"`
	Next    string                   `json:"next,omitempty"` // ?after= for the next page
}

// GET /api/streams?prefix=&after=&limit=
func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) {
	l, ok := eventsource.As[eventsource.StreamLister](s.cfg.Store)
	if !ok {
		s.fail(w, r, http.StatusNotImplemented, "unsupported", "this store cannot list its streams")
		return
	}
	limit, err := s.page(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("after")
	out := streamPage{Streams: []eventsource.StreamInfo{}}
	for info, err := range l.ListStreams(r.Context(), prefix) {
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		if after != "" && info.StreamID <= after {
			continue
		}
		if len(out.Streams) == limit {
			out.Next = out.Streams[limit-1].StreamID
			break
		}
		out.Streams = append(out.Streams, info)
	}
	writeJSON(w, http.StatusOK, out)
}

// recordPage is a page of records.
type recordPage struct {
	Records []Record `json:"records"`
	// Next is where the next page starts (?from=), 0 when this one is the
	// last there is now.
	Next    uint64 `json:"next,omitempty"`
	Scanned int    `json:"scanned,omitempty"` // records read to find these (the log's metadata filter)
}

// GET /api/streams/{id}?from=&limit=
func (s *Server) readStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := eventsource.ValidateStreamID(id); err != nil {
		s.failErr(w, r, err)
		return
	}
	limit, from, err := s.pageFrom(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	out := recordPage{Records: []Record{}}
	for rec, err := range s.cfg.Store.ReadStream(r.Context(), id, int64(from), int64(from)+int64(limit)) {
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		if len(out.Records) == limit {
			out.Next = uint64(rec.Version)
			break
		}
		out.Records = append(out.Records, FromRecord(rec))
	}
	if len(out.Records) == 0 && from == 1 {
		s.fail(w, r, http.StatusNotFound, "not_found", "stream %q has no events", id)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// logQuery is the global log's filter from the query string: ?stream=,
// ?prefix= and ?type= (each repeatable) go to the store; ?meta=key=value
// (repeatable) is matched here.
func logQuery(r *http.Request) (eventsource.Filter, map[string]string, error) {
	q := r.URL.Query()
	f := eventsource.Filter{Streams: q["stream"], StreamPrefixes: q["prefix"], Types: q["type"]}
	var meta map[string]string
	for _, m := range q["meta"] {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return f, nil, fmt.Errorf("meta %q: want key=value", m)
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = v
	}
	return f, meta, nil
}

func matchMeta(rec *eventsource.Record, meta map[string]string) bool {
	for k, v := range meta {
		if got, ok := rec.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// maxScan bounds the records one request reads to filter by metadata.
const maxScan = 100_000

// GET /api/log?from=&limit=&stream=&prefix=&type=&meta=
func (s *Server) readLog(w http.ResponseWriter, r *http.Request) {
	limit, from, err := s.pageFrom(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	filter, meta, err := logQuery(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	out := recordPage{Records: []Record{}}
	for rec, err := range s.cfg.Store.ReadAll(r.Context(), from, filter) {
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		if len(out.Records) == limit || out.Scanned == maxScan {
			out.Next = rec.Position
			break
		}
		out.Scanned++
		if matchMeta(&rec, meta) {
			out.Records = append(out.Records, FromRecord(rec))
		}
	}
	if meta == nil {
		out.Scanned = 0
	}
	writeJSON(w, http.StatusOK, out)
}

// appendRequest is the body of an append.
type appendRequest struct {
	// ExpectedVersion: a number, "any", "no-stream" or "exists"; absent is
	// "any".
	ExpectedVersion json.RawMessage `json:"expected_version"`
	Events          []struct {
		EventID  string            `json:"event_id"`
		Type     string            `json:"type"`
		Data     json.RawMessage   `json:"data"`
		Metadata map[string]string `json:"metadata"`
	} `json:"events"`
}

func parseExpected(raw json.RawMessage) (eventsource.ExpectedVersion, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return eventsource.Any, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("expected_version %d: a version is 0 or more", n)
		}
		return eventsource.Exact(n), nil
	}
	var word string
	if err := json.Unmarshal(raw, &word); err != nil {
		return 0, fmt.Errorf("expected_version %s: want a number, \"any\", \"no-stream\" or \"exists\"", raw)
	}
	switch word {
	case "any":
		return eventsource.Any, nil
	case "no-stream":
		return eventsource.NoStream, nil
	case "exists", "stream-exists":
		return eventsource.StreamExists, nil
	}
	return 0, fmt.Errorf("expected_version %q: want a number, \"any\", \"no-stream\" or \"exists\"", word)
}

// POST /api/streams/{id} {"expected_version":…, "events":[{"type":…, "data":…, "event_id":…, "metadata":…}]}
func (s *Server) appendStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req appendRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.failErr(w, r, err)
			return
		}
		s.fail(w, r, http.StatusBadRequest, "invalid", "request body: %v", err)
		return
	}
	ev, err := parseExpected(req.ExpectedVersion)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	if len(req.Events) == 0 {
		s.fail(w, r, http.StatusBadRequest, "invalid", "no events to append")
		return
	}
	recs := make([]eventsource.Record, len(req.Events))
	for i, e := range req.Events {
		if e.Type == "" {
			s.fail(w, r, http.StatusBadRequest, "invalid", "event %d has no type", i)
			return
		}
		data := []byte(e.Data)
		if len(data) == 0 {
			data = []byte("{}")
		}
		recs[i] = eventsource.Record{EventID: e.EventID, Type: e.Type, Codec: "json", Data: data, Metadata: e.Metadata}
	}
	res, err := s.cfg.Store.Append(r.Context(), id, ev, recs)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"stream": res.StreamID, "first_version": res.FirstVersion, "last_version": res.LastVersion,
		"first_position": res.FirstPosition, "last_position": res.LastPosition,
	})
}

// GET /api/tail?from=&from_end=1&stream=&prefix=&type=&meta= as
// Server-Sent Events: "record" events (id: the position, so a reconnecting
// EventSource resumes after the last one it got), "caught-up" once, and a
// comment every 15 seconds to keep proxies from closing the connection.
func (s *Server) tail(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, http.StatusInternalServerError, "internal", "this connection cannot stream")
		return
	}
	from, err := uintParam(r, "from", 1)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "invalid", "Last-Event-ID %q: want a position", last)
			return
		}
		from = n + 1
	} else if r.URL.Query().Get("from_end") != "" {
		h, ok := eventsource.As[eventsource.HeadReader](s.cfg.Store)
		if !ok {
			s.fail(w, r, http.StatusNotImplemented, "unsupported", "from_end: this store cannot tell its head")
			return
		}
		head, err := h.Head(r.Context())
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		from = head + 1
	}
	filter, meta, err := logQuery(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan []byte, 256)
	caughtUp := make(chan struct{}, 1)
	opts := []projection.SubscriptionOption{projection.From(max(from, 1)), projection.WithFilter(filter),
		projection.OnCaughtUp(func() {
			select {
			case caughtUp <- struct{}{}:
			default:
			}
		})}
	subErr := make(chan error, 1)
	go func() {
		subErr <- projection.NewSubscription(s.cfg.Store, opts...).Run(ctx, func(ctx context.Context, rec eventsource.Record) error {
			if !matchMeta(&rec, meta) {
				return nil
			}
			b, err := json.Marshal(FromRecord(rec))
			if err != nil {
				return err
			}
			msg := fmt.Appendf(nil, "id: %d\nevent: record\ndata: %s\n\n", rec.Position, b)
			select {
			case events <- msg:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	sentCaughtUp := false
	for {
		select {
		case msg := <-events:
			if _, err := w.Write(msg); err != nil {
				return
			}
		case <-caughtUp:
			if sentCaughtUp {
				continue
			}
			sentCaughtUp = true
			// Whatever the subscription queued before it caught up goes first.
			for n := len(events); n > 0; n-- {
				if _, err := w.Write(<-events); err != nil {
					return
				}
			}
			_, _ = fmt.Fprint(w, "event: caught-up\ndata: {}\n\n")
		case <-keepAlive.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
		case err := <-subErr:
			if err != nil && ctx.Err() == nil {
				b, _ := json.Marshal(map[string]string{"error": err.Error()})
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
				flusher.Flush()
			}
			return
		case <-ctx.Done():
			return
		}
		flusher.Flush()
	}
}

// GET /api/trace?id=&correlation_key=correlation_id&causation_key=causation_id&from=
//
// The records of one conversation: from position from on (1), in log
// order, every record whose event ID, correlation ID or causation ID is id
// or the ID of a record already found, so a chain of causes is followed
// across streams. It reads at most 100,000 records (next says where to go
// on).
func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("id")
	if id == "" {
		s.fail(w, r, http.StatusBadRequest, "invalid", "id is required: a correlation ID, causation ID or event ID")
		return
	}
	corr, caus := q.Get("correlation_key"), q.Get("causation_key")
	if corr == "" {
		corr = "correlation_id"
	}
	if caus == "" {
		caus = "causation_id"
	}
	from, err := uintParam(r, "from", 1)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	known := map[string]bool{id: true}
	out := recordPage{Records: []Record{}}
	for rec, err := range s.cfg.Store.ReadAll(r.Context(), max(from, 1), eventsource.Filter{}) {
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		if out.Scanned == maxScan || len(out.Records) == s.cfg.MaxPage {
			out.Next = rec.Position
			break
		}
		out.Scanned++
		if known[rec.EventID] || known[rec.Metadata[corr]] && rec.Metadata[corr] != "" || known[rec.Metadata[caus]] && rec.Metadata[caus] != "" {
			known[rec.EventID] = true
			if c := rec.Metadata[corr]; c != "" {
				known[c] = true
			}
			out.Records = append(out.Records, FromRecord(rec))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkpoints lists every checkpoint, or none without a checkpoint store.
func (s *Server) checkpoints(ctx context.Context) ([]projection.Checkpoint, error) {
	if s.cfg.Checkpoints == nil {
		return nil, nil
	}
	l, ok := s.cfg.Checkpoints.(projection.CheckpointLister)
	if !ok {
		return nil, nil
	}
	return l.List(ctx)
}

// withLag is cp for the API, with its lag when the store tells its head.
func (s *Server) withLag(ctx context.Context, cps []projection.Checkpoint) ([]Checkpoint, error) {
	out := make([]Checkpoint, len(cps))
	h, hasHead := eventsource.As[eventsource.HeadReader](s.cfg.Store)
	var head uint64
	if hasHead && len(cps) > 0 {
		var err error
		if head, err = h.Head(ctx); err != nil {
			return nil, err
		}
	}
	for i, cp := range cps {
		out[i] = FromCheckpoint(cp)
		if hasHead {
			lag := max(head, out[i].Position) - out[i].Position
			out[i].Lag = &lag
		}
	}
	return out, nil
}

// GET /api/projections
func (s *Server) listProjections(w http.ResponseWriter, r *http.Request) {
	cps, err := s.checkpoints(r.Context())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	out, err := s.withLag(r.Context(), cps)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projections": out})
}

// load returns projection name's checkpoint, or answers 404.
func (s *Server) load(w http.ResponseWriter, r *http.Request) (projection.Checkpoint, bool) {
	name := r.PathValue("name")
	if s.cfg.Checkpoints == nil {
		s.fail(w, r, http.StatusNotFound, "not_found", "no projection %q: this console has no checkpoint store", name)
		return projection.Checkpoint{}, false
	}
	cp, err := s.cfg.Checkpoints.Load(r.Context(), name)
	if err != nil {
		s.failErr(w, r, err)
		return cp, false
	}
	var all []projection.Checkpoint
	if !Exists(cp, nil) {
		if all, err = s.checkpoints(r.Context()); err != nil {
			s.failErr(w, r, err)
			return cp, false
		}
	}
	if !Exists(cp, all) {
		s.fail(w, r, http.StatusNotFound, "not_found", "no projection %q", name)
		return cp, false
	}
	return cp, true
}

// GET /api/projections/{name}
func (s *Server) projectionStatus(w http.ResponseWriter, r *http.Request) {
	cp, ok := s.load(w, r)
	if !ok {
		return
	}
	out, err := s.withLag(r.Context(), []projection.Checkpoint{cp})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	base, _, _ := strings.Cut(cp.Name, "@")
	if v, err := projection.LiveVersion(r.Context(), s.cfg.Checkpoints, base); err == nil {
		out[0].LiveVersion = v
	}
	writeJSON(w, http.StatusOK, out[0])
}

// POST /api/projections/{name}/{stop|start|reset|skip}
func (s *Server) controlProjection(w http.ResponseWriter, r *http.Request) {
	cp, ok := s.load(w, r)
	if !ok {
		return
	}
	ctx, name, action := r.Context(), cp.Name, r.PathValue("action")
	var err error
	switch action {
	case "stop":
		err = s.cfg.Checkpoints.Request(ctx, name, projection.RequestStop)
	case "reset":
		err = s.cfg.Checkpoints.Request(ctx, name, projection.RequestReset)
	case "skip":
		if cp.FaultedAt == 0 {
			s.fail(w, r, http.StatusConflict, "not_faulted", "%s has not faulted (status %s): there is no event to skip", name, StatusName(cp.Status))
			return
		}
		err = s.cfg.Checkpoints.Request(ctx, name, projection.RequestSkip)
	case "start":
		switch cp.Status {
		case projection.StatusStopped, projection.StatusFaulted:
			err = s.cfg.Checkpoints.SetStatus(ctx, name, projection.StatusRunning)
		case projection.StatusRunning:
		default:
			s.fail(w, r, http.StatusConflict, "not_startable", "%s is %s: only a stopped or faulted projection can be started", name, StatusName(cp.Status))
			return
		}
	default:
		s.fail(w, r, http.StatusNotFound, "not_found", "no action %q: stop, start, reset or skip", action)
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	cp, err = s.cfg.Checkpoints.Load(ctx, name)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"projection": name, "action": action, "checkpoint": FromCheckpoint(cp)})
}

// GET /api/projections/{name}/parked
func (s *Server) parked(w http.ResponseWriter, r *http.Request) {
	cp, ok := s.load(w, r)
	if !ok {
		return
	}
	parked := cp.Parked
	if parked == nil {
		parked = []projection.ParkedEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projection": cp.Name, "parked": parked})
}

// POST /api/projections/{name}/parked/{position}/{replay|discard}
func (s *Server) parkedAction(w http.ResponseWriter, r *http.Request) {
	cp, ok := s.load(w, r)
	if !ok {
		return
	}
	pos, err := strconv.ParseUint(r.PathValue("position"), 10, 64)
	if err != nil || pos == 0 {
		s.fail(w, r, http.StatusBadRequest, "invalid", "position %q: want a positive integer", r.PathValue("position"))
		return
	}
	var act func(ctx context.Context, name string, positions ...uint64) error
	switch action := r.PathValue("action"); action {
	case "replay":
		act = s.cfg.ReplayParked
	case "discard":
		act = s.cfg.DiscardParked
	default:
		s.fail(w, r, http.StatusNotFound, "not_found", "no action %q: replay or discard", action)
		return
	}
	if act == nil {
		s.fail(w, r, http.StatusNotImplemented, "unsupported", "this checkpoint store cannot act on parked events here")
		return
	}
	if err := act(r.Context(), cp.Name, pos); err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"projection": cp.Name, "position": pos, "action": r.PathValue("action")})
}
