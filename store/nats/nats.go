package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
	"github.com/eventsource-go/eventsource/internal/headcache"
)

// Store is an eventsource.Store on NATS JetStream. It also implements
// eventsource.Notifier, HeadReader, StreamLister, StreamDeleter,
// StreamLifecycle, Scavenger and SnapshotStore. Build it with New or Open;
// it is safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	nc     *natsgo.Conn // closed by Close when Open made it
	cfg    config
	cfgErr error
	log    *slog.Logger

	setupMu sync.Mutex
	events  atomic.Pointer[streamHandles] // nil until setup succeeded

	snapStream atomic.Pointer[jetstream.Stream] // the snapshots stream, once found or made
	metaStream atomic.Pointer[jetstream.Stream] // the lifecycle index, once found or made

	book ruleBook // the lifecycle index as ReadAll needs it

	heads *headcache.Cache[head] // stream ID -> (version, subject sequence) of its last commit

	changed *broadcast.Signal
	closed  atomic.Bool

	notifyMu   sync.Mutex
	notifyStop context.CancelFunc // stops the live consumer; nil until the first Notify
	notifyDone chan struct{}
}

type streamHandles struct {
	events jetstream.Stream
	ids    jetstream.Stream
}

type config struct {
	stream    string
	prefix    string
	replicas  int
	storage   jetstream.StorageType
	maxAge    time.Duration
	maxBytes  int64
	dupWindow time.Duration
	maxData   int
	batch     int
	hops      int
	logger    *slog.Logger
	noSetup   bool
}

// Option configures a Store.
type Option func(*config)

// WithStreamName sets the name of the JetStream stream that holds the events
// ("EVENTS" by default). The event ID index lives in a second stream named
// <name>_IDS, the lifecycle index in <name>_META and snapshots in
// <name>_SNAPSHOTS. Names are 1..200 ASCII letters, digits, '-' and '_'.
func WithStreamName(name string) Option { return func(c *config) { c.stream = name } }

// WithSubjectPrefix sets the subject prefix ("es" by default): the events of
// stream ID s are published on <prefix>.<encoded s>, the event ID index
// uses <prefix>-ids.<encoded event ID> and the lifecycle index
// <prefix>-meta.<encoded s>. The prefix is one or more subject
// tokens of ASCII letters, digits, '-' and '_' separated by dots.
func WithSubjectPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithReplicas sets the replication factor of the streams the store creates
// (1 by default; 3 for a cluster that must survive the loss of a server).
func WithReplicas(n int) Option { return func(c *config) { c.replicas = n } }

// WithMemoryStorage keeps the streams the store creates in memory instead of
// files: nothing survives a server restart. Meant for tests.
func WithMemoryStorage() Option { return func(c *config) { c.storage = jetstream.MemoryStorage } }

// WithMaxAge makes the server discard commits older than d (0, the default,
// keeps them forever). An event store normally keeps everything.
func WithMaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// WithMaxBytes caps the size of the events stream; when full, the server
// refuses new appends (DiscardNew) rather than dropping old events. 0, the
// default, means no limit.
func WithMaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// WithDuplicateWindow sets the stream's duplicate window (2 minutes by
// default): within it the server drops a second commit with the same
// Nats-Msg-Id (a hash of the commit's stream and the event IDs its caller
// supplied; commits of generated IDs carry none).
func WithDuplicateWindow(d time.Duration) Option { return func(c *config) { c.dupWindow = d } }

// WithMaxDataSize sets the largest Data a record may have
// (eventsource.DefaultMaxData by default). Whatever it is, a whole append
// must also fit in one message of the server's max_payload.
func WithMaxDataSize(n int) Option { return func(c *config) { c.maxData = n } }

// WithBatchSize sets how many commits (messages) a read fetches per round trip
// once it has switched to a consumer (256 by default). A read holds at most
// one batch in memory.
func WithBatchSize(n int) Option { return func(c *config) { c.batch = n } }

// WithoutAutoSetup keeps the store from creating or updating its streams:
// Open only connects, and calls use the streams as they are, failing with
// an error that wraps eventsource.ErrNotFound when they are missing. Call
// Setup to create them, Verify to check that they are there.
func WithoutAutoSetup() Option { return func(c *config) { c.noSetup = true } }

// WithLogger sets where the store logs (failed clean-ups of the event ID
// index, a live consumer that stops). It is silent by default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

func (c *config) validate() error {
	if !validStreamName(c.stream) {
		return fmt.Errorf("%w: nats: stream name %q", eventsource.ErrInvalidConfig, c.stream)
	}
	if !validPrefix(c.prefix) {
		return fmt.Errorf("%w: nats: subject prefix %q", eventsource.ErrInvalidConfig, c.prefix)
	}
	switch {
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("%w: nats: %d replicas, want 1..5", eventsource.ErrInvalidConfig, c.replicas)
	case c.maxAge < 0 || c.maxBytes < 0 || c.dupWindow < 0:
		return fmt.Errorf("%w: nats: negative limit", eventsource.ErrInvalidConfig)
	case c.maxData < 0:
		return fmt.Errorf("%w: nats: negative max data size", eventsource.ErrInvalidConfig)
	}
	return nil
}

func validStreamName(n string) bool {
	if n == "" || len(n) > 200 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !tokenByte(n[i]) {
			return false
		}
	}
	return true
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 200 {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if !tokenByte(tok[i]) {
				return false
			}
		}
	}
	return true
}

// New returns a store on js, whose connection the caller owns and closes
// after the store. New does no I/O: the streams are created (or checked) on
// first use, or by Setup. A bad option is reported by every call, wrapping
// eventsource.ErrInvalidConfig.
func New(js jetstream.JetStream, opts ...Option) *Store {
	c := config{
		stream:    "EVENTS",
		prefix:    "es",
		replicas:  1,
		storage:   jetstream.FileStorage,
		dupWindow: 2 * time.Minute,
		maxData:   eventsource.DefaultMaxData,
		batch:     256,
		hops:      8,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxData == 0 {
		c.maxData = eventsource.DefaultMaxData
	}
	if c.batch < 1 {
		c.batch = 1
	}
	s := &Store{js: js, cfg: c, changed: broadcast.New(), log: c.logger, heads: headcache.New(newerHead)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cfgErr = c.validate()
	if s.cfgErr == nil && js == nil {
		s.cfgErr = fmt.Errorf("%w: nats: nil JetStream", eventsource.ErrInvalidConfig)
	}
	return s
}

// Open connects to the NATS server at url, with a connection the store owns
// and closes in Close, and creates or checks the streams (unless
// WithoutAutoSetup is given).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	probe := New(nil, opts...)
	if err := probe.cfg.validate(); err != nil {
		return nil, err
	}
	nc, err := natsgo.Connect(url, natsgo.Name("eventsource"), natsgo.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	s := New(js, opts...)
	s.nc = nc
	if !s.cfg.noSetup {
		if err := s.Setup(ctx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return s, nil
}

// JetStream returns the handle the store uses.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Close ends every Notify channel and stops the live consumer and, when Open
// made the connection, closes it. Later calls fail with eventsource.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.changed.Close()
	s.notifyMu.Lock()
	stop, done := s.notifyStop, s.notifyDone
	s.notifyMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if s.nc != nil {
		s.nc.Close()
	}
	return nil
}

// Setup creates the events stream and the event ID index stream when they
// are missing, or updates their configuration to the store's options. The
// store calls it on first use; call it yourself to fail fast at start-up.
func (s *Store) Setup(ctx context.Context) error {
	_, err := s.setup(ctx, true)
	return err
}

// Verify reports whether the store's streams are there, without creating
// or changing anything: a missing one is an error wrapping
// eventsource.ErrNotFound that names it.
func (s *Store) Verify(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if _, err := s.lookup(ctx); err != nil {
		return err
	}
	_, err := s.meta(ctx, true)
	return err
}

// lookup finds the streams as they are. The lifecycle index is looked up
// apart (meta), so that a store set up by an earlier version keeps working
// until Setup adds it.
func (s *Store) lookup(ctx context.Context) (*streamHandles, error) {
	var h streamHandles
	for _, st := range []struct {
		name string
		to   *jetstream.Stream
	}{{s.cfg.stream, &h.events}, {s.idsStream(), &h.ids}} {
		found, err := s.js.Stream(ctx, st.name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: nats: JetStream stream %s does not exist (Setup creates it, as does the first use of a store opened without WithoutAutoSetup)", eventsource.ErrNotFound, st.name)
		}
		if err != nil {
			return nil, fmt.Errorf("nats: stream %s: %w", st.name, err)
		}
		*st.to = found
	}
	return &h, nil
}

// usable reports why the store cannot serve a call now.
func (s *Store) usable(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	return ctx.Err()
}

func (s *Store) eventsSubject() string { return s.cfg.prefix + ".>" }
func (s *Store) idsSubject() string    { return s.cfg.prefix + "-ids.>" }
func (s *Store) idsStream() string     { return s.cfg.stream + "_IDS" }
func (s *Store) metaSubjects() string  { return s.cfg.prefix + "-meta.>" }
func (s *Store) metaStreamName() string {
	return s.cfg.stream + "_META"
}

// handles returns the streams, creating them on first use unless
// WithoutAutoSetup was given.
func (s *Store) handles(ctx context.Context) (*streamHandles, error) {
	return s.setup(ctx, !s.cfg.noSetup)
}

// meta returns the lifecycle index stream: the one setup made, or the one
// found now. A store set up by an earlier version of this package has none
// until Setup runs: that is nil for reads (no stream has lifecycle state),
// and an error wrapping eventsource.ErrNotFound when required.
func (s *Store) meta(ctx context.Context, required bool) (jetstream.Stream, error) {
	if st := s.metaStream.Load(); st != nil {
		return *st, nil
	}
	st, err := s.js.Stream(ctx, s.metaStreamName())
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && required:
		return nil, fmt.Errorf("%w: nats: JetStream stream %s does not exist (Setup creates it, as does the first use of a store opened without WithoutAutoSetup)", eventsource.ErrNotFound, s.metaStreamName())
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("nats: stream %s: %w", s.metaStreamName(), err)
	}
	s.metaStream.Store(&st)
	return st, nil
}

// setup returns the streams, found once and kept; create creates or
// updates them first.
func (s *Store) setup(ctx context.Context, create bool) (*streamHandles, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	// Found by a lookup, the streams may lack the lifecycle index (set up
	// by an earlier version): Setup then goes on to make it.
	done := func(h *streamHandles) bool { return h != nil && (!create || s.metaStream.Load() != nil) }
	if h := s.events.Load(); done(h) {
		return h, nil
	}
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if h := s.events.Load(); done(h) {
		return h, nil
	}
	if !create {
		h, err := s.lookup(ctx)
		if err == nil {
			s.events.Store(h)
		}
		return h, err
	}
	maxMsg := int32(-1)
	if nc := s.js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		maxMsg = int32(nc.MaxPayload())
	}
	ev := jetstream.StreamConfig{
		Name:        s.cfg.stream,
		Description: "eventsource events: one message per append",
		Subjects:    []string{s.eventsSubject()},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      s.cfg.maxAge,
		MaxBytes:    s.cfg.maxBytes,
		MaxMsgs:     -1,
		MaxMsgSize:  maxMsg,
		Storage:     s.cfg.storage,
		Replicas:    s.cfg.replicas,
		Duplicates:  s.cfg.dupWindow,
		DenyDelete:  true, // a commit is removed only with its whole stream (purge)
	}
	if ev.MaxBytes == 0 {
		ev.MaxBytes = -1
	}
	evs, err := s.js.CreateOrUpdateStream(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("nats: create stream %s: %w", s.cfg.stream, err)
	}
	idss, err := s.js.CreateOrUpdateStream(ctx, s.index(s.idsStream(), "eventsource event ID index: one claim per event ID", s.idsSubject(), s.cfg.maxAge))
	if err != nil {
		return nil, fmt.Errorf("nats: create stream %s: %w", s.idsStream(), err)
	}
	// The lifecycle index never expires: its entries hold the rules.
	metas, err := s.js.CreateOrUpdateStream(ctx, s.index(s.metaStreamName(), "eventsource lifecycle index: each stream's metadata, retention and deletes", s.metaSubjects(), 0))
	if err != nil {
		return nil, fmt.Errorf("nats: create stream %s: %w", s.metaStreamName(), err)
	}
	s.metaStream.Store(&metas)
	h := &streamHandles{events: evs, ids: idss}
	s.events.Store(h)
	return h, nil
}

// index is the configuration of an index stream: one message per subject,
// the last kept, written with expected subject sequences.
func (s *Store) index(name, description, subjects string, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              name,
		Description:       description,
		Subjects:          []string{subjects},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		MaxAge:            maxAge,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Storage:           s.cfg.storage,
		Replicas:          s.cfg.replicas,
		Duplicates:        time.Second, // its messages carry no message ID; keep the window small
	}
}

// apiCode reports the JetStream error code of err, 0 when it has none.
func apiCode(err error) jetstream.ErrorCode {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode
	}
	return 0
}

// wrongSeq reports whether err is JetStream's "wrong last sequence": an
// expected-sequence check failed.
func wrongSeq(err error) bool {
	c := apiCode(err)
	return c == jetstream.JSErrCodeStreamWrongLastSequence || c == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

func notFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) || apiCode(err) == jetstream.JSErrCodeMessageNotFound
}

type head struct {
	version int64
	seq     uint64 // JetStream sequence of the stream's last message (a commit, or a marker)
	ruled   bool   // the stream has an entry in the lifecycle index
	tomb    bool   // the last message is a hard delete's marker
}

func newerHead(a, b head) bool { return a.seq > b.seq }
