package projection

import (
	"log/slog"
	"time"

	"github.com/eventsource-go/eventsource"
)

// SubscriptionOption configures a Subscription.
type SubscriptionOption interface{ applySubscription(*Subscription) }

// Option configures a Projector or a Projection.
type Option interface{ applyRunner(*runner) }

// SharedOption configures a Subscription, a Projection and a Projector
// alike: the same name means the same thing to all three.
type SharedOption interface {
	SubscriptionOption
	Option
}

type subscriptionOption func(*Subscription)

func (f subscriptionOption) applySubscription(s *Subscription) { f(s) }

type runnerOption func(*runner)

func (f runnerOption) applyRunner(r *runner) { f(r) }

// shared is an option with one meaning for subscriptions and runners.
type shared struct {
	sub    func(*Subscription)
	runner func(*runner)
}

func (o shared) applySubscription(s *Subscription) { o.sub(s) }
func (o shared) applyRunner(r *runner)             { o.runner(r) }

// From starts the subscription at position p (inclusive); 0 or 1 reads the
// whole log. To resume after a checkpoint c, use From(c+1). (A projection
// starts after its checkpoint.)
func From(p uint64) SubscriptionOption {
	return subscriptionOption(func(s *Subscription) { s.from.Store(p) })
}

// WithFilter selects records in the store (streams, categories, types,
// metadata equality).
func WithFilter(f eventsource.Filter) SharedOption {
	return shared{func(s *Subscription) { s.filter = f }, func(r *runner) { r.filter = f }}
}

// Where adds conditions every delivered record must meet (all of them).
func Where(conds ...Condition) SharedOption {
	return shared{
		func(s *Subscription) { s.where = append(s.where, conds...) },
		func(r *runner) { r.where = append(r.where, conds...) },
	}
}

// WithPolling sets the bounds of polling (10ms and 1s by default): an idle
// reader backs off from min to max between reads when the store has no live
// signal, and an idle projection checks for control requests every max.
func WithPolling(min, max time.Duration) SharedOption {
	return shared{
		func(s *Subscription) { s.minPoll, s.maxPoll = min, max },
		func(r *runner) { r.minPoll, r.poll = min, max },
	}
}

// OnCaughtUp calls f each time the subscription has delivered everything
// committed so far, before it waits for more: once when it first reaches the
// end of the log, and again after each burst of new records it catches up
// with. f runs on Run's goroutine, which waits for it.
//
// Given to NewProjection or NewProjector, f is called each time the
// projection has applied everything committed so far and its checkpoint,
// saved in the checkpoint store, says so: once the instance holding the
// lease has caught up after it started, took over or acted on a control
// request, and after each burst of new records.
func OnCaughtUp(f func()) SharedOption {
	return shared{func(s *Subscription) { s.onCaughtUp = f }, func(r *runner) { r.onCaughtUp = f }}
}

// WithLogger sets a logger. Silent by default.
func WithLogger(l *slog.Logger) SharedOption {
	return shared{func(s *Subscription) { s.log = l }, func(r *runner) { r.log = l }}
}

// WithBatchSize sets how many records are applied per transaction (100).
func WithBatchSize(n int) Option { return runnerOption(func(r *runner) { r.batch = max(n, 1) }) }

// WithLease sets the lease time-to-live (30s); an instance renews it every
// third of that, and a standby takes over that long after a holder dies.
func WithLease(ttl time.Duration) Option { return runnerOption(func(r *runner) { r.ttl = ttl }) }

// WithOwner names this instance in leases (default: host name, process ID
// and a random suffix).
func WithOwner(id string) Option { return runnerOption(func(r *runner) { r.owner = id }) }

// WithErrorPolicy sets what happens when the handler fails (fault at once).
func WithErrorPolicy(p ErrorPolicy) Option { return runnerOption(func(r *runner) { r.policy = p }) }

// WithWorkers sets how many workers a Projector applies events with (1).
// Events of one partition key (PartitionBy; the stream by default) are
// applied in log order by one worker; different keys in parallel, each
// worker committing its own transactions. The checkpoint is a low-water
// mark plus the positions handled above it, so a crash redelivers and
// never skips, and the number of workers may change between runs.
// Projections (folds) have one state and ignore it.
func WithWorkers(n int) Option { return runnerOption(func(r *runner) { r.workers = max(n, 1) }) }

// PartitionBy sets the partition key of a Projector's events: events with
// one key are applied in log order; keys are spread over the workers. The
// default is the stream; ByMetadata uses a metadata value.
func PartitionBy(key func(r *eventsource.Record) string) Option {
	return runnerOption(func(r *runner) {
		if key != nil {
			r.partition = key
		}
	})
}

// ByStream is the default partition key: the stream ID.
func ByStream(r *eventsource.Record) string { return r.StreamID }

// ByMetadata returns a partition key function: the metadata value key
// (records without it share the key "").
func ByMetadata(key string) func(r *eventsource.Record) string {
	return func(r *eventsource.Record) string { return r.Metadata[key] }
}

// WithVersion sets a Projector's version (1). A new version builds its read
// model (its own tables: give it another ReadModel) from position 0 while
// the live version serves; when it has caught up it takes over in one
// transaction and the old version's Run returns ErrSuperseded. Version 1's
// checkpoint has the projector's name; version n's is "name@vn".
func WithVersion(n int) Option { return runnerOption(func(r *runner) { r.version = max(n, 1) }) }

// WithParkingLimit sets how many events a Projector may hold parked (1000);
// one more faults it with ErrParkingFull.
func WithParkingLimit(n int) Option { return runnerOption(func(r *runner) { r.parkLimit = max(n, 1) }) }

// WithDigestRange sets the size of a delivery digest (10,000): an event is
// added to the digest of its cell of n positions, and cells that are wholly
// handled are joined while they hold n events or fewer, so where positions
// are sparse (PostgreSQL's) a digest still covers about n events. It is
// used when a projector's digests start (its first run or a reset).
// Verify reports faults to within a digest's range.
func WithDigestRange(n uint64) Option {
	return runnerOption(func(r *runner) { r.digestRange = max(n, 1) })
}
