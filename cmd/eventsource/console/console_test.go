package console_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/console"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// env is a console over a real SQLite store and its checkpoints.
type env struct {
	t      *testing.T
	store  *sqlite.Store
	cps    *sqlcheckpoint.Store
	srv    *console.Server
	http   *httptest.Server
	token  string
	client *http.Client
}

func newEnv(t *testing.T, token string, tweak ...func(*console.Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cps, err := sqlcheckpoint.New(store.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	cfg := console.Config{Store: store, Checkpoints: cps, Token: token,
		ReplayParked: func(ctx context.Context, name string, ps ...uint64) error {
			return projection.ReplayParked(ctx, cps, name, ps...)
		},
		DiscardParked: func(ctx context.Context, name string, ps ...uint64) error {
			return projection.DiscardParked(ctx, cps, name, ps...)
		}}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, store: store, cps: cps, srv: srv, http: hs, token: token, client: hs.Client()}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (e *env) do(method, path, body string, auth bool, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); res.StatusCode >= 400 && !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("%s %s: %d with Content-Type %q, want a JSON error: %s", method, path, res.StatusCode, ct, b)
	}
	if res.StatusCode >= 400 && path != "/readyz" { // readyz's 503 is its report
		var ae struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(b, &ae); err != nil || ae.Error.Code == "" || ae.Error.Message == "" {
			e.t.Fatalf("%s %s: %d with body %s, want {\"error\":{\"code\",\"message\"}}", method, path, res.StatusCode, b)
		}
		if strings.Contains(string(b), "goroutine") || strings.Contains(string(b), ".go:") {
			e.t.Fatalf("%s %s: the error shows code: %s", method, path, b)
		}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

func (e *env) append(stream string, md map[string]string, types ...string) eventsource.AppendResult {
	e.t.Helper()
	recs := make([]eventsource.Record, len(types))
	for i, typ := range types {
		recs[i] = eventsource.Record{Type: typ, Codec: "json", Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Metadata: md}
	}
	res, err := e.store.Append(context.Background(), stream, eventsource.Any, recs)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

type recordPage struct {
	Records []console.Record
	Next    uint64
	Scanned int
}

func TestStreamsAndReads(t *testing.T) {
	e := newEnv(t, "")
	for i := range 5 {
		e.append(fmt.Sprint("account-", i), nil, "Opened", "Deposited")
	}
	e.append("order-1", map[string]string{"tenant": "acme"}, "Placed")

	var streams struct {
		Streams []eventsource.StreamInfo
		Next    string
	}
	if c := e.do("GET", "/api/streams?prefix=account-&limit=3", "", false, &streams); c != 200 || len(streams.Streams) != 3 || streams.Next != "account-2" {
		t.Fatalf("streams page 1: %d %+v", c, streams)
	}
	after := streams.Next
	streams.Next = ""
	if c := e.do("GET", "/api/streams?prefix=account-&limit=3&after="+after, "", false, &streams); c != 200 || len(streams.Streams) != 2 || streams.Next != "" ||
		streams.Streams[0].StreamID != "account-3" || streams.Streams[1].Version != 2 {
		t.Fatalf("streams page 2: %d %+v", c, streams)
	}
	if c := e.do("GET", "/api/streams?limit=0", "", false, nil); c != 400 {
		t.Fatalf("limit=0: %d, want 400", c)
	}

	var page recordPage
	if c := e.do("GET", "/api/streams/account-1?limit=1", "", false, &page); c != 200 || len(page.Records) != 1 || page.Next != 2 || page.Records[0].Type != "Opened" {
		t.Fatalf("stream page: %d %+v", c, page)
	}
	r := page.Records[0]
	if r.Stream != "account-1" || r.Version != 1 || r.Position == 0 || r.EventID == "" || string(r.Data) != `{"n":0}` || r.RecordedAt.IsZero() {
		t.Fatalf("record %+v", r)
	}
	page = recordPage{}
	if c := e.do("GET", "/api/streams/account-1?from=2", "", false, &page); c != 200 || len(page.Records) != 1 || page.Next != 0 || page.Records[0].Version != 2 {
		t.Fatalf("stream from 2: %d %+v", c, page)
	}
	if c := e.do("GET", "/api/streams/nobody", "", false, nil); c != 404 {
		t.Fatalf("missing stream: %d, want 404", c)
	}
	if c := e.do("GET", "/api/streams/x?from=-1", "", false, nil); c != 400 {
		t.Fatalf("from=-1: %d, want 400", c)
	}

	if c := e.do("GET", "/api/log?from=3&limit=4", "", false, &page); c != 200 || len(page.Records) != 4 || page.Records[0].Position != 3 || page.Next != 7 {
		t.Fatalf("log page: %d %+v", c, page)
	}
	if c := e.do("GET", "/api/log?type=Opened&prefix=account-", "", false, &page); c != 200 || len(page.Records) != 5 {
		t.Fatalf("log by type: %d, %d records", c, len(page.Records))
	}
	if c := e.do("GET", "/api/log?meta=tenant=acme", "", false, &page); c != 200 || len(page.Records) != 1 || page.Records[0].Stream != "order-1" || page.Scanned != 11 {
		t.Fatalf("log by metadata: %d %+v", c, page)
	}
	if c := e.do("GET", "/api/log?meta=nokey", "", false, nil); c != 400 {
		t.Fatalf("bad meta: %d, want 400", c)
	}
	var info map[string]any
	if c := e.do("GET", "/api/info", "", false, &info); c != 200 || info["writable"] != false || info["list_streams"] != true {
		t.Fatalf("info: %d %v", c, info)
	}
}

// Data that is not JSON, and data written by the encrypting codec, are
// bytes: the API says which.
func TestRecordData(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if _, err := e.store.Append(ctx, "s-1", eventsource.Any, []eventsource.Record{
		{Type: "Raw", Codec: "gob", Data: []byte{0xff, 0x01}},
		{Type: "Sealed", Codec: "enc+json", Data: []byte(`{"looks":"like json"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	var page recordPage
	e.do("GET", "/api/streams/s-1", "", false, &page)
	raw, sealed := page.Records[0], page.Records[1]
	if raw.Data != nil || string(raw.DataBase64) != "\xff\x01" || raw.Encrypted {
		t.Fatalf("gob record %+v", raw)
	}
	if sealed.Data != nil || !sealed.Encrypted || len(sealed.DataBase64) == 0 {
		t.Fatalf("encrypted record %+v", sealed)
	}
}

func TestAppend(t *testing.T) {
	ro := newEnv(t, "")
	if c := ro.do("POST", "/api/streams/a-1", `{"events":[{"type":"T"}]}`, false, nil); c != 403 {
		t.Fatalf("append on a read-only console: %d, want 403", c)
	}
	e := newEnv(t, "s3cret", func(c *console.Config) { c.MaxBody = 4096 })
	body := `{"expected_version":"no-stream","events":[{"event_id":"e-1","type":"Opened","data":{"owner":"ann"},"metadata":{"user":"u1"}},{"type":"Deposited","data":5}]}`
	if c := e.do("POST", "/api/streams/a-1", body, false, nil); c != 401 {
		t.Fatalf("append without the token: %d, want 401", c)
	}
	e.token = "wrong"
	if c := e.do("POST", "/api/streams/a-1", body, true, nil); c != 401 {
		t.Fatalf("append with a wrong token: %d, want 401", c)
	}
	e.token = "s3cret"
	var res struct {
		Stream                      string
		FirstVersion, LastVersion   int64 `json:",omitempty"`
		FirstPosition, LastPosition uint64
	}
	var m map[string]any
	if c := e.do("POST", "/api/streams/a-1", body, true, &m); c != 201 || m["last_version"] != 2.0 || m["stream"] != "a-1" {
		t.Fatalf("append: %d %v", c, m)
	}
	_ = res
	h, err := eventsource.ReadStreamAll(context.Background(), e.store, "a-1")
	if err != nil || len(h) != 2 || h[0].EventID != "e-1" || string(h[0].Data) != `{"owner":"ann"}` || h[0].Metadata["user"] != "u1" || string(h[1].Data) != "5" {
		t.Fatalf("stored %+v, %v", h, err)
	}
	// The same event IDs after the same expected version: the original result.
	retry := `{"expected_version":0,"events":[{"event_id":"e-1","type":"Opened","data":{"owner":"ann"},"metadata":{"user":"u1"}},{"event_id":"` + h[1].EventID + `","type":"Deposited","data":5}]}`
	if c := e.do("POST", "/api/streams/a-1", retry, true, &m); c != 201 || m["last_position"] != float64(h[1].Position) {
		t.Fatalf("retry: %d %v", c, m)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"expected_version":"no-stream","events":[{"type":"T"}]}`, 409},
		{`{"expected_version":7,"events":[{"type":"T"}]}`, 409},
		{`{"events":[]}`, 400},
		{`{"events":[{"data":1}]}`, 400},
		{`{"events":[{"type":"T"}],"extra":1}`, 400},
		{`{"expected_version":"sometimes","events":[{"type":"T"}]}`, 400},
		{`{"expected_version":-3,"events":[{"type":"T"}]}`, 400},
		{`not json`, 400},
		{`{"events":[{"type":"T","data":"` + strings.Repeat("x", 5000) + `"}]}`, 413},
	} {
		if c := e.do("POST", "/api/streams/a-1", tc.body, true, nil); c != tc.code {
			t.Errorf("append %.60s: %d, want %d", tc.body, c, tc.code)
		}
	}
	if c := e.do("POST", "/api/streams/"+strings.Repeat("s", 300), `{"events":[{"type":"T"}]}`, true, nil); c != 400 {
		t.Errorf("append to a stream ID over the limit: %d, want 400", c)
	}
	if c := e.do("DELETE", "/api/streams/a-1", "", true, nil); c != 405 {
		t.Errorf("DELETE a stream: %d, want 405", c)
	}
	if c := e.do("PUT", "/index.html", "", false, nil); c != 405 {
		t.Errorf("PUT a page: %d, want 405", c)
	}
}

// sse reads Server-Sent Events.
type sse struct {
	r    *bufio.Reader
	body io.Closer
}

func openSSE(t *testing.T, e *env, path, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sse{r: bufio.NewReader(res.Body), body: res.Body}
}

// next returns the next event's name, id and data.
func (s *sse) next(t *testing.T) (name, id, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if name != "" {
				return name, id, data
			}
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

func TestTail(t *testing.T) {
	e := newEnv(t, "")
	e.append("a-1", nil, "One", "Two")
	e.append("b-1", nil, "Three")
	done := make(chan struct{})
	defer close(done)
	s := openSSE(t, e, "/api/tail?prefix=a-", "")
	for _, want := range []string{"One", "Two"} {
		name, _, data := s.next(t)
		var r console.Record
		if name != "record" || json.Unmarshal([]byte(data), &r) != nil || r.Type != want {
			t.Fatalf("tail: %s %s, want the record %s", name, data, want)
		}
	}
	if name, _, _ := s.next(t); name != "caught-up" {
		t.Fatalf("tail: %s, want caught-up", name)
	}
	e.append("b-1", nil, "Skipped")
	res := e.append("a-1", nil, "Live")
	name, id, data := s.next(t)
	if name != "record" || id != fmt.Sprint(res.LastPosition) || !strings.Contains(data, `"type":"Live"`) {
		t.Fatalf("live: %s %s %s", name, id, data)
	}
	// A reconnect with Last-Event-ID resumes after it.
	s2 := openSSE(t, e, "/api/tail", "1")
	if name, _, data := s2.next(t); name != "record" || !strings.Contains(data, `"type":"Two"`) {
		t.Fatalf("resumed tail starts with %s %s, want Two", name, data)
	}
	// from_end: only what comes next.
	s3 := openSSE(t, e, "/api/tail?from_end=1", "")
	if name, _, _ := s3.next(t); name != "caught-up" {
		t.Fatalf("from_end: %s first, want caught-up", name)
	}
	e.append("c-1", nil, "New")
	if name, _, data := s3.next(t); name != "record" || !strings.Contains(data, `"type":"New"`) {
		t.Fatalf("from_end: %s %s", name, data)
	}
}

func TestTrace(t *testing.T) {
	e := newEnv(t, "")
	first := e.append("order-1", map[string]string{"correlation_id": "req-9"}, "Placed")
	h, _ := eventsource.ReadStreamAll(context.Background(), e.store, "order-1")
	e.append("unrelated-1", map[string]string{"correlation_id": "req-1"}, "Noise")
	// Caused by the order's event, in another stream, without the correlation ID.
	e.append("payment-1", map[string]string{"causation_id": h[0].EventID}, "Charged")
	p, _ := eventsource.ReadStreamAll(context.Background(), e.store, "payment-1")
	e.append("mail-1", map[string]string{"causation_id": p[0].EventID}, "Sent")
	var page recordPage
	if c := e.do("GET", "/api/trace?id=req-9", "", false, &page); c != 200 || len(page.Records) != 3 {
		t.Fatalf("trace: %d %+v", c, page)
	}
	got := []string{page.Records[0].Stream, page.Records[1].Stream, page.Records[2].Stream}
	if strings.Join(got, ",") != "order-1,payment-1,mail-1" || page.Scanned != 4 || page.Records[0].Position != first.FirstPosition {
		t.Fatalf("trace found %v after %d records", got, page.Scanned)
	}
	if c := e.do("GET", "/api/trace", "", false, nil); c != 400 {
		t.Fatalf("trace without id: %d", c)
	}
}

// tally is a read model that fails on "Poison".
type tally struct{}

func (tally) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'tally'`).Scan(&n)
	return n == 1, err
}
func (tally) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE tally (stream TEXT PRIMARY KEY, n INTEGER)`)
	return err
}
func (tally) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if r.Type == "Poison" {
			return errors.New("cannot apply Poison")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tally VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}
func (tally) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM tally`)
	return err
}
func (tally) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE tally`)
	return err
}

// run runs a projector until it has caught up, in the background; the
// returned function stops it.
func (e *env) run(name string, pol projection.ErrorPolicy) func() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	caught := make(chan struct{}, 1)
	p := projection.NewProjector(name, e.store, e.cps, tally{}, projection.WithErrorPolicy(pol), projection.WithOwner("console-test"),
		projection.WithPolling(2*time.Millisecond, 20*time.Millisecond), projection.OnCaughtUp(func() {
			select {
			case caught <- struct{}{}:
			default:
			}
		}))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-caught:
	case err := <-done:
		if !errors.Is(err, projection.ErrFaulted) {
			e.t.Fatalf("projector: %v", err)
		}
		return cancel // it ended: faulted
	case <-time.After(20 * time.Second):
		e.t.Fatal("the projector did not catch up")
	}
	return func() { cancel(); <-done }
}

func (e *env) waitFor(what string, ok func() bool) {
	e.t.Helper()
	for end := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestProjections(t *testing.T) {
	e := newEnv(t, "tok", func(c *console.Config) { c.StuckAfter = 300 * time.Millisecond })
	var list struct{ Projections []console.Checkpoint }
	if c := e.do("GET", "/api/projections", "", false, &list); c != 200 || len(list.Projections) != 0 {
		t.Fatalf("no projections yet: %d %+v", c, list)
	}
	e.append("a-1", nil, "One", "Two")
	poison := e.append("a-2", nil, "Poison")
	e.append("a-3", nil, "Three")
	stop := e.run("tally", projection.ErrorPolicy{Park: true})
	if c := e.do("GET", "/api/projections", "", false, &list); c != 200 || len(list.Projections) != 1 {
		t.Fatalf("list: %d %+v", c, list)
	}
	cp := list.Projections[0]
	if cp.Name != "tally" || cp.Status != "running" || cp.Position != 4 || cp.Parked != 1 || cp.Lag == nil || *cp.Lag != 0 || cp.Holder != "console-test" {
		t.Fatalf("checkpoint %+v", cp)
	}
	var one console.Checkpoint
	if c := e.do("GET", "/api/projections/tally", "", false, &one); c != 200 || one.LiveVersion != 1 || one.Position != 4 {
		t.Fatalf("status: %d %+v", c, one)
	}
	if c := e.do("GET", "/api/projections/nope", "", false, nil); c != 404 {
		t.Fatalf("missing projection: %d", c)
	}
	var parked struct{ Parked []projection.ParkedEvent }
	if c := e.do("GET", "/api/projections/tally/parked", "", false, &parked); c != 200 || len(parked.Parked) != 1 || parked.Parked[0].Position != poison.FirstPosition {
		t.Fatalf("parked: %d %+v", c, parked)
	}
	// Controls need the token.
	if c := e.do("POST", "/api/projections/tally/stop", "", false, nil); c != 401 {
		t.Fatalf("stop without the token: %d", c)
	}
	if c := e.do("POST", "/api/projections/tally/skip", "", true, nil); c != 409 {
		t.Fatalf("skip without a fault: %d, want 409", c)
	}
	if c := e.do("POST", "/api/projections/tally/jump", "", true, nil); c != 404 {
		t.Fatalf("unknown action: %d, want 404", c)
	}
	if c := e.do("POST", fmt.Sprintf("/api/projections/tally/parked/%d/discard", poison.FirstPosition+100), "", true, nil); c != 404 {
		t.Fatalf("discard of a position not parked: %d, want 404", c)
	}
	if c := e.do("POST", fmt.Sprintf("/api/projections/tally/parked/%d/replay", poison.FirstPosition+100), "", true, nil); c != 404 {
		t.Fatalf("replay of a position not parked: %d, want 404", c)
	}
	if c := e.do("POST", "/api/projections/tally/parked/0/replay", "", true, nil); c != 400 {
		t.Fatalf("replay of position 0: %d, want 400", c)
	}
	if c := e.do("POST", fmt.Sprintf("/api/projections/tally/parked/%d/replay", poison.FirstPosition), "", true, nil); c != 202 {
		t.Fatalf("replay: %d", c)
	}
	e.waitFor("the replayed event to be parked again (it still fails)", func() bool {
		parked.Parked = nil // decoding into old elements would keep fields the JSON omits
		e.do("GET", "/api/projections/tally/parked", "", false, &parked)
		return len(parked.Parked) == 1 && parked.Parked[0].Attempts >= 1 && !parked.Parked[0].Replay
	})
	if c := e.do("POST", fmt.Sprintf("/api/projections/tally/parked/%d/discard", poison.FirstPosition), "", true, nil); c != 202 {
		t.Fatalf("discard: %d", c)
	}
	e.waitFor("the discarded event to be skipped", func() bool {
		e.do("GET", "/api/projections/tally", "", false, &one)
		return one.Parked == 0 && len(one.Skipped) == 1
	})
	if c := e.do("POST", "/api/projections/tally/reset", "", true, nil); c != 202 {
		t.Fatalf("reset: %d", c)
	}
	// The running instance acts on the reset: it stops its Run, and the
	// request is gone once the next Run has rebuilt the read model.
	stop()
	stop = e.run("tally", projection.ErrorPolicy{Park: true})
	e.waitFor("the reset to be done", func() bool {
		e.do("GET", "/api/projections/tally", "", false, &one)
		return one.Request == "" && one.Position == 4
	})
	if c := e.do("POST", "/api/projections/tally/stop", "", true, nil); c != 202 {
		t.Fatalf("stop: %d", c)
	}
	e.waitFor("the projector to stop", func() bool {
		e.do("GET", "/api/projections/tally", "", false, &one)
		return one.Status == "stopped"
	})
	stop()
	var ready map[string]any
	if c := e.do("GET", "/readyz", "", false, &ready); c != 200 {
		t.Fatalf("readyz with a stopped projection: %d %v", c, ready)
	}
	if c := e.do("POST", "/api/projections/tally/start", "", true, nil); c != 202 {
		t.Fatalf("start: %d", c)
	}
	// Running but not running: behind the head and not moving is stuck.
	e.append("a-4", nil, "Four")
	e.do("GET", "/readyz", "", false, nil) // first sample
	e.waitFor("readyz to call it stuck", func() bool {
		c := e.do("GET", "/readyz", "", false, &ready)
		return c == 503 && strings.Contains(fmt.Sprint(ready["problems"]), "stuck")
	})
	stop = e.run("tally", projection.ErrorPolicy{Park: true})
	e.waitFor("readyz to be ready again", func() bool { return e.do("GET", "/readyz", "", false, nil) == 200 })
	stop()
	// A faulted projection is not ready.
	e.append("a-5", nil, "Poison")
	stop = e.run("tally", projection.ErrorPolicy{})
	stop()
	e.waitFor("readyz to call it faulted", func() bool {
		c := e.do("GET", "/readyz", "", false, &ready)
		return c == 503 && strings.Contains(fmt.Sprint(ready["problems"]), "faulted")
	})
	if c := e.do("POST", "/api/projections/tally/skip", "", true, nil); c != 202 {
		t.Fatalf("skip the fault: %d", c)
	}
	if c := e.do("GET", "/healthz", "", false, nil); c != 200 {
		t.Fatalf("healthz: %d", c)
	}
}

// The OpenAPI document is served, and names every route the server has.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, "")
	var doc struct {
		OpenAPI string
		Paths   map[string]map[string]any
	}
	if c := e.do("GET", "/api/openapi.json", "", false, &doc); c != 200 || doc.OpenAPI == "" {
		t.Fatalf("openapi: %d", c)
	}
	for _, route := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/info", "GET /api/streams", "GET /api/streams/{id}",
		"POST /api/streams/{id}", "GET /api/log", "GET /api/tail", "GET /api/trace", "GET /api/projections", "GET /api/projections/{name}",
		"POST /api/projections/{name}/{action}", "GET /api/projections/{name}/parked", "POST /api/projections/{name}/parked/{position}/{action}"} {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the OpenAPI document does not describe %s", route)
		}
	}
}
