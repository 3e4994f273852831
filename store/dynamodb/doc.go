// Package dynamodb is an eventsource.Store in one Amazon DynamoDB table, on
// the AWS SDK for Go v2. Besides the Store contract it implements
// eventsource.Notifier, HeadReader and StreamLister. It does not implement
// StreamDeleter (see Limits).
//
//	cfg, _ := config.LoadDefaultConfig(ctx)
//	client := dynamodb.NewFromConfig(cfg)
//	_ = esdynamo.CreateTable(ctx, client, "events", esdynamo.TableOptions{OnDemand: true}) // once
//	store := esdynamo.New(client, "events")
//	repo := eventsource.New(&User{}, eventsource.WithStore(store))
//
// or store, err := esdynamo.Open(ctx, "dynamodb://events?region=eu-west-1").
//
// It is built for the API subset every DynamoDB implementation has: no
// TransactWriteItems and no Streams (the test server, dynalite, has
// neither). Every append becomes exactly one conditional PutItem of one
// item. The last section says what a production deployment should do
// instead for the global log.
//
// # Table
//
// One table, key pk (S, partition) and sk (N, sort), and one global
// secondary index "log", key g (S) and p (N), projecting all attributes.
// CreateTable makes it; DeleteTable removes it. The items:
//
//   - commit: pk "s#"+stream, sk = the version the commit follows (its
//     base). Attributes: n (records), p (position of its first record), t
//     (recorded time, Unix ns), g ("log#" + p/100000), r (the records: a list
//     of maps with the event ID, type, codec, data as B and metadata packed
//     into one B). One append is one commit.
//   - claim: pk "e#"+event ID, sk 0: the stream and base the ID is meant
//     for, and a token naming the append. One per event.
//   - counter: pk "$position", sk 0, c = the last allocated position.
//   - void: pk "v#"+first position, sk 0, with g, p and n: positions that
//     will never hold a commit.
//   - reservation: pk "r#" + len(scope) + "#" + scope + value, sk 0, o = the
//     owner (eventsource.Reserver: a conditional PutItem reserves, a
//     conditional DeleteItem releases).
//
// # Appends and versions
//
// An append with an exact expected version N reads the stream's last commit
// (a strongly consistent Query, newest first, Limit 1): its current version
// is that commit's sk+n, or 0. On a mismatch the result is a
// *eventsource.ConcurrencyError (or an idempotent retry, below). Otherwise
// the append claims its event IDs while it allocates positions, then puts
// its commit at sk = N with the condition attribute_not_exists(pk). If that
// condition fails, another commit followed N first: the append reports a
// conflict (or, with eventsource.Any or StreamExists, reads again and
// retries until it lands or ctx ends, pausing a little, with jitter, after
// a few lost rounds). The read is skipped on a first attempt that
// expects no stream (N = 0) or exactly the version this Store's own last
// append to the stream ended at (it remembers up to 4,096 streams).
//
// Why this is sound: a commit is only ever written at 0 or at the end of an
// existing commit (a base that a consistent read returned as the stream's
// current version, or the end of the commit this Store itself last wrote to
// the stream), and items are never changed or deleted. So the commits of a stream form a chain 0 = b0 < b1 < … with
// b(i+1) = b(i) + n(i): a new commit at the end of commit i lands only if
// no item holds that key, that is only if commit i is the last. Two commits
// that follow one version collide on the key, and no commit can start
// inside another. Versions are therefore 1..V, contiguous and unique, and an
// append is atomic because it is one PutItem.
//
// # Event IDs are unique across streams
//
// A conditional write covers one item, so the store keeps a claim item per
// event ID, written before the commit (in parallel, up to 16 at a time) with
// the condition that it does not exist or is this append's own. An existing
// claim is judged by the commit it names (one consistent GetItem):
//
//   - that commit exists and holds the ID: the ID is stored. The append is
//     an idempotent retry if the records stored from that event on carry
//     exactly the append's IDs and the expected version allows (the original
//     AppendResult is returned), else eventsource.ErrDuplicateEvent;
//   - that commit exists and holds other events: the claimant can never
//     commit there (the key is taken), so the claim is dead and is taken
//     over, conditionally on its token and base;
//   - no commit is there: another append is in flight (or died before its
//     put). If it wants the very key this append wants, the claim is taken
//     over (at most one of the two puts can land, and either way the claim
//     names the place that holds the ID); otherwise the append fails with
//     ErrDuplicateEvent.
//
// A claim that names a commit holding its ID is never replaced, so two
// stored events never share an ID. Claims are never deleted: deleting one
// safely would need a check and a delete in one write. A claim left by a
// lost or cancelled append is harmless (the next claimant takes it over);
// one left by an append that died between its claims and its put keeps its
// ID refused elsewhere until its stream grows past the claimed version.
// Cost: one small write (1 WCU) per event, sent while the position counter
// is updated (so no round trip of its own), and about 100 bytes of storage
// per event.
//
// # The global log
//
// Positions come from the counter item: an UpdateItem ADD of the append's
// record count, which returns the new value, so each commit carries its
// positions, dense and unique, before it is put. The index "log" (partition
// "log#"+position/100000, sort key the first position) lists commits and
// voids in position order; ReadAll queries it a page at a time (100 items
// or 1 MB) and unpacks the records. Filters are applied by the reader: the
// whole log is read whatever the filter.
//
// Positions are taken in one order and committed in another, so a reader
// can see position P+1 before P. Because positions are dense, it knows a gap
// when it sees one. A gap is a commit in flight, an append that lost (it
// writes a void for its positions at once, so readers skip them without
// waiting), or a writer that died or stalled between allocation and put.
// The reader waits for a gap up to the gap timeout (WithGapTimeout, 5s by
// default) from when it first saw it, polling the index, and then skips it.
// In return a writer never sends a commit whose positions it allocated
// longer ago than half the timeout: it checks its monotonic clock just
// before the put (after the commit hook) and, when too late, writes a void
// and allocates again (4 tries in all); the put itself runs under a
// deadline at the same instant, which also stops the SDK's retries.
//
// Why no event is missed: a gap at P is noticed only when a later position
// is visible, which was allocated after P; so P was allocated before the
// reader started waiting, and its commit, if it is ever sent, is sent
// within half the timeout of that. The other half is the margin for the
// request to reach DynamoDB and for the index to show it. Only durations
// on each machine's own monotonic clock are compared: clocks need not
// agree. This is safe only while a PutItem reaches DynamoDB, and the index
// is updated, within that margin (2.5 s by default). A network stall or an
// index that lags longer (DynamoDB global secondary indexes are eventually
// consistent; their lag is usually well under a second but not bounded)
// can make a reader skip an event that lands afterwards. Every store that
// shares a table must use the same gap timeout.
//
// A gap at the end of the log is never waited for: ReadAll ends there and
// the next read starts again from the same position.
//
// # Production: build the global log from DynamoDB Streams
//
// On AWS, prefer one of these to the counter and the timing argument:
//
//   - DynamoDB Streams: enable a stream (NEW_IMAGE) on the table, drop the
//     counter, and let one consumer (a Lambda with concurrency 1, or the
//     Kinesis Client Library with one worker) read the commit records and
//     write the global log to a second table keyed by position, assigning
//     positions in the order it consumes them. The consumer is the log's only
//     writer and a position is assigned only to a commit that is already
//     durable, so readers never see a gap and never wait. Streams keep each
//     item's changes in order; across shards the order is the consumer's,
//     which is all the contract asks for.
//   - TransactWriteItems: put the commit and increment the counter in one
//     transaction, conditional on the counter's previous value. Commits are
//     then serialised by the counter, so the position order is the commit
//     order and readers never need to wait or skip (at the price of one
//     conflict per concurrent append, and 2× the write cost).
//
// Neither is available on dynalite, which is why this package does what it
// does.
//
// # Limits
//
//   - One append is one item, so it must fit DynamoDB's 400 KB item limit
//     (attribute names and values counted). Limits declares what fits:
//     398 KiB of eventsource.AppendSize (the rest is left for the item's
//     keys, counts and time) and 7,689 records; a larger append fails with
//     eventsource.ErrTooLarge before anything is written; a commit is never
//     split across items. Each record's Data is also bounded by
//     WithMaxDataSize (256 KiB by default, at most 407,499 bytes). In
//     practice: up to about 2,400 events of 100 bytes in one append.
//   - The counter is one partition key written by every append: DynamoDB
//     allows about 1,000 WCU/s per partition key, so at most about 1,000
//     appends/s per table, whatever their streams. One stream's commits also
//     share a partition key (1,000 WCU/s, where a commit of n KB costs n WCU
//     plus as much again for the index). A log bucket (100,000 positions)
//     is one index partition key, written by every commit of its range.
//   - A reader may pause for up to the gap timeout when a writer dies or
//     stalls between allocation and put; see the global log.
//   - Stream deletion is not offered: deleting a stream's commits is many
//     writes, which would race appends, and restarting at version 1 would
//     need a tombstone the chain argument does not cover.
//   - ListStreams is a Scan of the whole table (strongly consistent), and
//     keeps one entry per stream in memory to sort them.
//   - Head is the end of the newest commit visible in the index; commits in
//     flight are not counted.
//   - On DynamoDB (not dynalite) the index is eventually consistent: ReadAll
//     may not yet show an append that has returned, for as long as the index
//     lags. ReadStream is strongly consistent.
//
// # Costs
//
// An append of n events, when it wins at once: 1 consistent Query (the last
// commit, RCU = its size / 4 KB; skipped as above), n claim PutItems (1 WCU
// each), 1 counter UpdateItem (1 WCU), 1 PutItem of the commit (size / 1 KB
// WCU, twice: table and index). Two or three round trips in sequence (the
// claims and the counter in parallel). A lost race or a refused append adds
// a void PutItem for its positions; a retry with Any repeats it all. An idempotent
// retry or a duplicate costs a BatchGetItem of the claims, a GetItem per
// claim found and a short ReadStream.
//
// ReadStream: a consistent Query per page (100 commits or 1 MB), plus one
// for the commit holding from when from > 1. ReadAll: one index Query
// for the commit holding from, an eventually consistent index Query per page, a counter read when a page comes back
// empty, and index polls while it waits for a gap. Notify: in-process
// appends signal at once; other processes' appends are seen by reading the
// counter every WithPollInterval (1 s by default). See BENCHMARKS.md for
// measured times against dynalite.
package dynamodb
