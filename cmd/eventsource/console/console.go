// Package console is the HTTP side of eventsource serve: a JSON API over an
// event store and its projections' checkpoints, Server-Sent Events for the
// live log, health and readiness, and the web console (files embedded in
// the binary, no JavaScript toolchain to build it).
//
// The API is read-only unless a token is configured; then appends and
// projection controls need "Authorization: Bearer TOKEN". Every error is a
// JSON object with a status code ({"error":{"code":…,"message":…}}),
// request bodies and pages are bounded, and event data is data: the console
// renders it as text. The routes are described by the OpenAPI document at
// /api/openapi.json.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

//go:embed web openapi.json
var files embed.FS

// Config is what a Server serves.
type Config struct {
	// Store is the event store.
	Store eventsource.Store
	// Checkpoints are the projections' checkpoints; nil when there are none
	// (the projections routes list nothing).
	Checkpoints projection.CheckpointStore
	// ReplayParked and DiscardParked act on parked events; they need the
	// checkpoint store's transaction type (projection.ReplayParked and
	// DiscardParked on it). Nil: those routes answer 501.
	ReplayParked, DiscardParked func(ctx context.Context, name string, positions ...uint64) error
	// Token, when set, is required (as a bearer token) by appends and
	// projection controls; without one the API is read-only.
	Token string
	// StuckAfter: /readyz reports a projection stuck when it is behind the
	// head of the log and its checkpoint has not moved for this long
	// (default one minute).
	StuckAfter time.Duration
	// MaxBody bounds a request body (default 1 MiB); MaxPage a page of
	// records or streams (default 1,000; 100 when a request names none).
	MaxBody int64
	MaxPage int
	// Metrics serves /metrics (for example the OpenTelemetry Prometheus
	// exporter's handler); nil: 404.
	Metrics http.Handler
	// Log receives one line per failed request; nil: slog.Default().
	Log *slog.Logger
}

// contentSecurityPolicy lets the console's pages run their own script and
// style only: no inline script, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Server is the console's http.Handler.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	ready *readiness
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: console: no store", eventsource.ErrInvalidConfig)
	}
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxPage <= 0 {
		cfg.MaxPage = 1000
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.ready = &readiness{s: s, seen: map[string]progressMark{}}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Watch samples the projections' progress every interval until ctx ends,
// so that /readyz can tell a stuck projection from a busy one between
// requests. serve runs it; a Server without it samples on each /readyz.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.ready.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /metrics", s.metrics)
	m.HandleFunc("GET /api/openapi.json", s.openapi)
	m.HandleFunc("GET /api/info", s.info)
	m.HandleFunc("GET /api/streams", s.listStreams)
	m.HandleFunc("GET /api/streams/{id}", s.readStream)
	m.HandleFunc("POST /api/streams/{id}", s.write(s.appendStream))
	m.HandleFunc("GET /api/log", s.readLog)
	m.HandleFunc("GET /api/tail", s.tail)
	m.HandleFunc("GET /api/trace", s.trace)
	m.HandleFunc("GET /api/projections", s.listProjections)
	m.HandleFunc("GET /api/projections/{name}", s.projectionStatus)
	m.HandleFunc("POST /api/projections/{name}/{action}", s.write(s.controlProjection))
	m.HandleFunc("GET /api/projections/{name}/parked", s.parked)
	m.HandleFunc("POST /api/projections/{name}/parked/{position}/{action}", s.write(s.parkedAction))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = method
			if _, pattern := m.Handler(probe); pattern != "/api/" {
				allow = append(allow, method)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "%s %s: this route takes %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
			return
		}
		s.fail(w, r, http.StatusNotFound, "not_found", "no such API route: %s %s (GET /api/openapi.json lists them)", r.Method, r.URL.Path)
	})
	web, _ := fs.Sub(files, "web")
	static := http.FileServerFS(web)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "%s %s: the console's pages are read with GET", r.Method, r.URL.Path)
			return
		}
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		static.ServeHTTP(w, r)
	})
}

// write wraps a handler that changes something: it needs the token, and
// its body is bounded.
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" {
			s.fail(w, r, http.StatusForbidden, "read_only", "this console is read-only: start eventsource serve with --token (or ES_TOKEN) to allow appends and projection controls")
			return
		}
		auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(auth), []byte(s.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventsource"`)
			s.fail(w, r, http.StatusUnauthorized, "unauthorized", "this request needs the console's token: Authorization: Bearer TOKEN")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		h(w, r)
	}
}

// apiError is the body of every error answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, format string, args ...any) {
	var e apiError
	e.Error.Code, e.Error.Message = code, fmt.Sprintf(format, args...)
	if status >= 500 {
		s.cfg.Log.ErrorContext(r.Context(), "console: request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", e.Error.Message))
	}
	writeJSON(w, status, e)
}

// failErr answers err with the status its kind calls for.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	var ce *eventsource.ConcurrencyError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ce):
		s.fail(w, r, http.StatusConflict, "conflict", "%v", err)
	case errors.As(err, &mbe):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
	case errors.Is(err, eventsource.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, eventsource.ErrInvalidStreamID), errors.Is(err, eventsource.ErrInvalidEvent),
		errors.Is(err, eventsource.ErrDuplicateEvent), errors.Is(err, eventsource.ErrInvalidStreamMetadata):
		s.fail(w, r, http.StatusBadRequest, "invalid", "%v", err)
	case errors.Is(err, eventsource.ErrTooLarge):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", "%v", err)
	case errors.Is(err, projection.ErrNotParked):
		s.fail(w, r, http.StatusNotFound, "not_parked", "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.fail(w, r, http.StatusServiceUnavailable, "canceled", "%v", err)
	default:
		s.fail(w, r, http.StatusInternalServerError, "internal", "%v", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	b, _ := files.ReadFile("openapi.json")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		s.fail(w, r, http.StatusNotFound, "not_found", "no metrics are served")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// info tells the console what it may do.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	_, lists := eventsource.As[eventsource.StreamLister](s.cfg.Store)
	writeJSON(w, http.StatusOK, map[string]any{
		"writable":      s.cfg.Token != "",
		"projections":   s.cfg.Checkpoints != nil,
		"list_streams":  lists,
		"max_page":      s.cfg.MaxPage,
		"stuck_after_s": s.cfg.StuckAfter.Seconds(),
	})
}

// progressMark is a projection's checkpoint position when it last moved.
type progressMark struct {
	position uint64
	since    time.Time
}

// readiness remembers when each projection's checkpoint last moved.
type readiness struct {
	s    *Server
	mu   sync.Mutex
	seen map[string]progressMark
}

// problem is one reason the server is not ready.
type problem struct {
	Projection string `json:"projection"`
	Reason     string `json:"reason"` // faulted, stuck
	Detail     string `json:"detail"`
}

// sample reads every checkpoint and returns what is not ready.
func (rd *readiness) sample(ctx context.Context) ([]problem, error) {
	st, err := rd.s.state(ctx)
	if err != nil {
		return nil, err
	}
	return rd.check(st), nil
}

// projectionsState is every checkpoint and the head of the log (when the
// store tells it), read once for a readiness check or a metrics scrape.
type projectionsState struct {
	cps     []projection.Checkpoint
	head    uint64
	hasHead bool
}

func (s *Server) state(ctx context.Context) (projectionsState, error) {
	var st projectionsState
	var err error
	if st.cps, err = s.checkpoints(ctx); err != nil || len(st.cps) == 0 {
		return st, err
	}
	if h, ok := eventsource.As[eventsource.HeadReader](s.cfg.Store); ok {
		st.hasHead = true
		if st.head, err = h.Head(ctx); err != nil {
			return st, err
		}
	}
	return st, nil
}

// check notes each projection's progress and returns what is not ready.
func (rd *readiness) check(st projectionsState) []problem {
	cps, head := st.cps, st.head
	now := time.Now()
	rd.mu.Lock()
	defer rd.mu.Unlock()
	var out []problem
	for _, cp := range cps {
		last, _ := Handled(cp)
		m, ok := rd.seen[cp.Name]
		if !ok || m.position != last {
			m = progressMark{position: last, since: now}
			rd.seen[cp.Name] = m
		}
		switch {
		case cp.Status == projection.StatusFaulted:
			out = append(out, problem{cp.Name, "faulted", fmt.Sprintf("at position %d: %s", cp.FaultedAt, cp.Error)})
		case cp.Status == projection.StatusRunning && head > last && now.Sub(m.since) >= rd.s.cfg.StuckAfter:
			out = append(out, problem{cp.Name, "stuck", fmt.Sprintf("at position %d of %d, not moved for %s", last, head, now.Sub(m.since).Round(time.Second))})
		}
	}
	return out
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	problems, err := s.ready.sample(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": err.Error()})
		return
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
