package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
	"github.com/eventsource-go/eventsource/internal/headcache"
)

// Store is an event store in one DynamoDB table. Build it with New or Open.
// It is safe for concurrent use.
type Store struct {
	client     *dynamodb.Client
	table      string
	maxData    int
	gapTimeout time.Duration
	poll       time.Duration
	log        *slog.Logger

	changed *broadcast.Signal
	closed  atomic.Bool
	heads   *headcache.Cache[state] // stream ID -> the end of its chain after this Store's last write to it
	ruled   atomic.Bool             // the table's lifecycle flag is known to be set
}

// Option configures a Store.
type Option func(*Store)

// DefaultMaxData is the default limit on one record's Data: a commit must fit
// one DynamoDB item (400 KB), so the store's limit is far below
// eventsource.DefaultMaxData.
const DefaultMaxData = 256 << 10

// DefaultGapTimeout is how long a reader of the global log waits for a
// position that was allocated but is not yet visible before it skips it.
const DefaultGapTimeout = 5 * time.Second

// WithMaxDataSize sets the largest Data a record may have (DefaultMaxData,
// 256 KiB, by default). Whatever it is, a whole append must fit one item.
func WithMaxDataSize(n int) Option { return func(s *Store) { s.maxData = n } }

// WithGapTimeout sets how long a reader of the global log waits for a missing
// position before skipping it (DefaultGapTimeout). A writer gives up a commit
// whose positions it allocated more than half of this ago, so every store
// that shares a table must use the same value.
func WithGapTimeout(d time.Duration) Option { return func(s *Store) { s.gapTimeout = d } }

// WithPollInterval sets how often Notify polls the position counter for
// appends made by other processes (1s by default; 0 turns polling off, so
// only this Store's own appends are signalled).
func WithPollInterval(d time.Duration) Option { return func(s *Store) { s.poll = d } }

// WithLogger logs skipped gaps and failed clean-ups (silent by default).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a store on table, which must exist (see CreateTable). The
// caller keeps ownership of client.
func New(client *dynamodb.Client, table string, opts ...Option) *Store {
	s := &Store{
		client:     client,
		table:      table,
		maxData:    DefaultMaxData,
		gapTimeout: DefaultGapTimeout,
		poll:       time.Second,
		log:        slog.New(slog.DiscardHandler),
		changed:    broadcast.New(),
		heads:      headcache.New(func(a, b state) bool { return b.next.less(a.next) }),
	}
	for _, o := range opts {
		o(s)
	}
	if s.maxData <= 0 {
		s.maxData = DefaultMaxData
	}
	if s.gapTimeout <= 0 {
		s.gapTimeout = DefaultGapTimeout
	}
	return s
}

// Open returns a store named by a URL:
//
//	dynamodb://table?region=eu-west-1
//	dynamodb://table?endpoint=http://127.0.0.1:4567&create=true
//
// Credentials and region come from the usual AWS sources (environment,
// shared config, instance roles). With endpoint (a local server such as
// dynalite or DynamoDB Local) and no AWS_ACCESS_KEY_ID in the environment,
// static dummy credentials are used, and the region defaults to us-east-1.
// create=true creates the table (on demand) when it does not exist.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "dynamodb" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q: want dynamodb://table?region=…&endpoint=…", eventsource.ErrInvalidConfig, rawURL)
	}
	q := u.Query()
	client, err := NewClient(ctx, q.Get("endpoint"), q.Get("region"))
	if err != nil {
		return nil, err
	}
	if create, _ := strconv.ParseBool(q.Get("create")); create {
		_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(u.Host)})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			err = CreateTable(ctx, client, u.Host, TableOptions{OnDemand: true})
		}
		if err != nil {
			return nil, fmt.Errorf("dynamodb: table %q: %w", u.Host, err)
		}
	}
	return New(client, u.Host, opts...), nil
}

// ErrTableExists: CreateTable was asked for a table that exists (or is
// being created or deleted).
var ErrTableExists = errors.New("dynamodb: table already exists")

type tableExistsError struct{ name string }

func (e tableExistsError) Error() string {
	return fmt.Sprintf("dynamodb: table %q already exists", e.name)
}

func (e tableExistsError) Is(target error) bool { return target == ErrTableExists }

// Verify reports whether the store's table is there, without creating or
// changing anything: a missing table is an error wrapping
// eventsource.ErrNotFound that says how to create it. Calls on a missing
// table fail with the same error.
func (s *Store) Verify(ctx context.Context) error {
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	_, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return s.wrap(err, "describe table %q", s.table)
	}
	return nil
}

// missingTable is the error of a call on a table that does not exist.
func (s *Store) missingTable() error {
	return fmt.Errorf("%w: dynamodb: table %q does not exist: create it with `eventsource dynamodb create-table --name %s` or CreateTable, or open the store with create=true in its URL",
		eventsource.ErrNotFound, s.table, s.table)
}

// NewClient returns a DynamoDB client for region (the AWS default when
// empty) and, when endpoint is set, for a server at that address (dynalite,
// DynamoDB Local): then, unless AWS_ACCESS_KEY_ID is set, it uses static
// dummy credentials, and the region defaults to us-east-1.
func NewClient(ctx context.Context, endpoint, region string) (*dynamodb.Client, error) {
	var loads []func(*config.LoadOptions) error
	if region == "" && endpoint != "" {
		region = "us-east-1"
	}
	if region != "" {
		loads = append(loads, config.WithRegion(region))
	}
	if endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		loads = append(loads, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// Close makes every later call fail with eventsource.ErrClosed and ends
// Notify channels. It does not close the client, which has nothing to close.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.changed.Close()
	}
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	return ctx.Err()
}

// Names of the table's attributes and index. Short, because every byte of
// an attribute name counts against the 400 KB item limit and the bill.
const (
	attrPK      = "pk" // partition key (S)
	attrSK      = "sk" // sort key (N)
	attrLog     = "g"  // global log index partition key: "log#" + bucket (S)
	attrPos     = "p"  // first position of a commit or void (N); global log index sort key
	attrCount   = "n"  // records in a commit, positions in a void (N)
	attrTime    = "t"  // recorded time, Unix nanoseconds (N)
	attrRecords = "r"  // the records (L of M)
	attrStream  = "s"  // claim: the stream it is for (S)
	attrBase    = "b"  // claim: the version the commit follows (N)
	attrToken   = "k"  // claim: the claiming append's token (S)
	attrCounter = "c"  // position counter (N)

	attrLastMarker  = "lm" // commit: the key of the stream's latest marker before it (N), whose mv, rc, ra, rs, mc and dv it copies
	attrDropped     = "x"  // commit: leading records a scavenge removed (N)
	attrMetaVersion = "mv" // marker: the metadata version it writes (N); marks a marker
	attrMetaDoc     = "md" // marker: the metadata, storekit.EncodeStreamMetadata (B)
	attrCut         = "rc" // marker: storekit.Retention.Cut (N)
	attrMaxAge      = "ra" // marker: Retention.MaxAge, ns (N)
	attrSince       = "rs" // marker: Retention.Since, Unix ns (N)
	attrMaxCount    = "mc" // marker: the metadata's MaxCount (N)
	attrSnapCut     = "dv" // marker: snapshots up to this version are deleted (N)

	logIndex = "log"

	// bucketSize positions share one global log index partition. A commit
	// holds at most eventsource.MaxRecordsPerCall (65,536) positions, fewer
	// than a bucket, so a commit starts in the bucket of any of its
	// positions or in the one before.
	bucketSize = 100_000

	counterKey = "$position"

	// lifecycleKey is set before the table's first marker: until then
	// ReadAll looks up no rules.
	lifecycleKey = "$lifecycle"
)

// TableOptions sizes a table made by CreateTable.
type TableOptions struct {
	OnDemand bool  // pay per request (PAY_PER_REQUEST); RCU and WCU are ignored
	RCU      int64 // provisioned read capacity of the table and its index (default 5)
	WCU      int64 // provisioned write capacity of the table and its index (default 5)
	// Stream turns the table's DynamoDB stream on, with new images: what a
	// Lambda function reading the committed events needs.
	Stream bool
}

// CreateTable creates a table for a Store, with its global log index, and
// waits until it is ACTIVE (at most 5 minutes).
func CreateTable(ctx context.Context, client *dynamodb.Client, name string, o TableOptions) error {
	in := TableInput(name, o)
	if _, err := client.CreateTable(ctx, in); err != nil {
		if inUse := (*types.ResourceInUseException)(nil); errors.As(err, &inUse) {
			return tableExistsError{name}
		}
		return fmt.Errorf("dynamodb: create table %q: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("dynamodb: wait for table %q: %w", name, err)
	}
	return nil
}

// TableInput is the definition of a Store's table that CreateTable
// creates: keys, the global log index, billing and the stream. Tools that
// describe the table elsewhere (eventsource dynamodb create-table
// --terraform) start from it.
func TableInput(name string, o TableOptions) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(attrLog), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrPos), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(logIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrLog), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrPos), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
	if o.OnDemand {
		in.BillingMode = types.BillingModePayPerRequest
	} else {
		if o.RCU <= 0 {
			o.RCU = 5
		}
		if o.WCU <= 0 {
			o.WCU = 5
		}
		tp := &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(o.RCU), WriteCapacityUnits: aws.Int64(o.WCU)}
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = tp
		in.GlobalSecondaryIndexes[0].ProvisionedThroughput = tp
	}
	if o.Stream {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}
	}
	return in
}

// DeleteTable deletes a table and everything in it, and waits until it is
// gone (at most 5 minutes).
func DeleteTable(ctx context.Context, client *dynamodb.Client, name string) error {
	if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
		return fmt.Errorf("dynamodb: delete table %q: %w", name, err)
	}
	w := dynamodb.NewTableNotExistsWaiter(client, func(o *dynamodb.TableNotExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("dynamodb: wait for table %q to go: %w", name, err)
	}
	return nil
}
