// Package dynamodb is an eventsource.Store in one Amazon DynamoDB table, on
// the AWS SDK for Go v2. Besides the Store contract it implements
// eventsource.Notifier, HeadReader, StreamLister, SnapshotStore, Reserver,
// StreamDeleter, StreamLifecycle and Scavenger.
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
// item, and so does every metadata write, soft delete and tombstone. The
// section on production says what a deployment should do instead for the
// global log.
//
// # Table
//
// One table, key pk (S, partition) and sk (N, sort), and one global
// secondary index "log", key g (S) and p (N), projecting all attributes.
// CreateTable makes it; DeleteTable removes it. The items:
//
//   - commit: pk "s#"+stream, sk = its key in the stream's chain: the
//     version the commit follows (its base), plus a fraction when it
//     follows a marker (below). Attributes: n (records), p (position of its
//     first record), t (recorded time, Unix ns), g ("log#" + p/100000), r
//     (the records: a list of maps with the event ID, type, codec, data as B
//     and metadata packed into one B), x (how many leading records a
//     scavenge removed; r then holds the rest), and on a stream that has a
//     marker lm (the key of its latest) with a copy of that marker's mv,
//     rc, ra, rs, mc and dv. One append is one commit.
//   - marker: pk "s#"+stream, sk = its key in the chain: one lifecycle
//     write (SetStreamMetadata, DeleteStream, TombstoneStream). Attributes:
//     mv (the metadata version it writes), md (the metadata as
//     storekit.EncodeStreamMetadata JSON, B; left out when empty), the
//     stream's storekit.Retention after the write, rc (Cut; math.MaxInt64
//     for a tombstone), ra (MaxAge, ns), rs (Since, Unix ns), mc (the
//     metadata's MaxCount) and dv (snapshots up to this version are
//     deleted). No log attributes: markers are not in the global log.
//   - lifecycle flags: pk "$lifecycle", sk 0 (the table has had a lifecycle
//     write) and pk "m#"+stream, sk 0 (the stream has), no attributes;
//     written once, before a stream's first marker, never removed.
//   - claim: pk "e#"+event ID, sk 0: the stream and chain key the ID is
//     meant for, and a token naming the append. One per event.
//   - counter: pk "$position", sk 0, c = the last allocated position.
//   - void: pk "v#"+first position, sk 0, with g, p and n: positions that
//     will never hold a commit.
//   - reservation: pk "r#" + len(scope) + "#" + scope + value, sk 0, o = the
//     owner (eventsource.Reserver: a conditional PutItem reserves, a
//     conditional DeleteItem releases).
//   - snapshot: pk "n#"+stream, sk = its version (see SaveSnapshot).
//
// # Appends and versions
//
// A stream's items (commits and markers) form a chain ordered by sort key.
// The key after a commit at base b with n records is b+n; the key after a
// marker at key k is k + 10⁻¹⁸, at the same version (a marker holds no
// records). So keys are b + j·10⁻¹⁸, a commit's key lies in [base,
// base+1), and a stream that never had a marker has the keys 0, n1,
// n1+n2, … it always had. DynamoDB numbers have 38 digits: a version of up
// to 19 digits and 18 for j fit.
//
// An append with an exact expected version N reads the end of the chain
// (a strongly consistent Query, newest first, Limit 1): the stream's
// current version is the last commit's base+n, or a last marker's
// version, or 0, and the next key is the one after the last item. On a
// mismatch the result is a *eventsource.ConcurrencyError (or an idempotent
// retry, below). Otherwise the append claims its event IDs while it
// allocates positions, then puts its commit at the next key with the
// condition attribute_not_exists(pk) (and, if the stream has a marker, the
// latest marker's key and rules copied from the last item). If that condition fails, another item took
// the key first: the append reports a conflict (or, with eventsource.Any or
// StreamExists, or after a marker that left the version alone, reads again
// and retries until it lands or ctx ends, pausing a little, with jitter,
// after a few lost rounds). The read is skipped on a first attempt that
// expects no stream (key 0) or exactly the version this Store's own last
// write to the stream ended at (it remembers the next key and the latest
// marker's rules for up to 4,096 streams).
//
// Why this is sound: an item is only ever written at key 0 or at the key
// after an existing item (one that a consistent read returned as the
// chain's last, or the item this Store itself last wrote to the stream),
// with the condition that no item holds that key; and no key is ever
// removed: a scavenge rewrites a commit without its retired records but
// keeps its key, n and positions, and never touches a marker. Each item
// determines the key after it, and keys grow along the chain. So the items
// of a stream form a chain k0 = 0 < k1 < … with k(i+1) = next(item i): a
// new item at next(item i) lands only if no item holds that key, that is
// only if item i is the last. Two items that follow the same item collide
// on the key, and nothing can start inside a commit. Versions are therefore
// 1..V, contiguous and unique, and an append is atomic because it is one
// PutItem. (Were a scavenge to delete a commit, a writer remembering an
// older end, or a first NoStream attempt at key 0, could land in the hole
// and reuse its versions: that is why it does not.)
//
// # Lifecycle: metadata, deletes, retention
//
// A stream's metadata, its metadata version and its retention
// (storekit.Retention) are what its latest marker says; a stream with no
// marker has none. The chain's last item tells them: it is that marker, or
// a commit that copies its rules (the metadata document, when needed, is
// one GetItem of the marker away). A lifecycle write reads the end of the
// chain and the document, checks
// its expected version (the metadata version, or the stream's version for
// a delete), computes the new retention with Retention.Next at the head it
// read, and puts a marker at the next key on the same condition as an
// append, retrying the same way. Because a marker and an append race for
// the same key:
//
//   - the head a marker's retention was computed at is the head at the
//     instant it lands (a commit that landed after the read makes the put
//     fail), so a delete's TruncateBefore is exactly the version + 1 and
//     retirement is one-way even while others append;
//   - an append that follows a marker read it (it is the last item, or the
//     last commit copies it), so NoStream sees a soft delete
//     (Retention.Expect), and a racing append loses to it;
//   - a tombstone (rc = math.MaxInt64) is a marker nothing may follow:
//     every writer that reads it refuses with *eventsource.StreamDeletedError,
//     and one that read an older end collides with it. Once TombstoneStream
//     has returned, no append lands.
//
// MaxCount needs no write per append: the cut it makes at a head h is
// h-MaxCount+1, and heads only grow, so the retention at any time is the
// latest marker's with Cut raised to head-MaxCount+1 (exactly what
// Retention.Next would have stored at each append), and both come from the
// one read of the chain's end. An append to a stream with MaxCount
// therefore retires what falls out of the window in its own PutItem.
//
// Reads hide retired records at once, in every process, because every
// read learns the rules from the table with strongly consistent reads
// started after it was asked for:
//
//   - ReadStream reads the end of the chain while it queries its first page.
//     A tombstoned stream yields one *eventsource.StreamDeletedError; a
//     stream with a retention is read from max(from, cut) up to the head
//     that read saw, leaving out !Retention.Visible records. A stream
//     without rules costs one parallel Query.
//   - ReadAll, for each page of the log index: while the table's flag is
//     not set, one GetItem of it, in parallel with the page (no rules
//     anywhere: nothing else); once it is, a BatchGetItem of the flags of
//     the streams in the page, then the end of each flagged stream's chain
//     (16 at a time), and records !Visible under their stream's retention
//     are left out. The flags are written before a stream's first marker,
//     so a reader that starts after a lifecycle write returned sees them.
//   - ListStreams (its Scan sees markers too) leaves out Retention.Absent
//     streams; StreamInfo.Version is the real head.
//   - LoadSnapshot reads the end of the chain beside the snapshot and hides
//     a snapshot at or below the marker's dv: DeleteStream and
//     TombstoneStream remove a stream's snapshots in the same PutItem as the
//     marker, logically; the snapshot items are then deleted (a
//     BatchWriteItem), and again by Scavenge should that fail.
//
// # Scavenge
//
// Nothing is removed physically but by Scavenge. It finds the streams with
// a lifecycle flag (a Scan of the table), and for each whose retention
// retires anything, in stream ID order after ScavengeOptions.After: it
// queries its commits (below the cut, or all of them when MaxAge retires
// by time), rewrites each that holds retired records without them (a
// conditional PutItem, on x being what it read: a commit's retired records
// are always a prefix, as its records share one time), then deletes their
// claims (a conditional DeleteItem each, unless an append took the claim
// over), which frees their event IDs, and, for a deleted stream, its
// snapshots. What it keeps: every chain key (a commit whose records are all
// gone stays as a small item with its key, count and positions, which the
// log index reads as a void), markers, flags, voids and the counter.
// Versions survive because the chain's keys do.
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
// per event. Scavenge deletes the claims of the records it removes (their
// commits no longer hold the IDs, so the claims were dead already).
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
//     which is all the contract asks for. (It takes only the insertions of
//     commits: markers have no records, and a scavenge's rewrite of a
//     commit is a modification.)
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
//   - Deletes are soft or hard (markers); no stream restarts at version 1.
//     Scavenge keeps a small item per commit (about 60 bytes and an index
//     entry), every marker and the flags: reclaiming those would need a
//     check and a delete in one write (see the chain argument).
//   - Scavenge is not one transaction per stream, as DynamoDB offers none
//     here: a stream's commits are rewritten one conditional PutItem at a
//     time, and its claims deleted one conditional DeleteItem at a time.
//     Each step is invisible to readers (it removes only what they already
//     could not see) and safe alone, so a scavenge cut short leaves some
//     commits done and others not, and running it again finishes the job.
//   - A snapshot saved by a writer racing a delete may stay stored (hidden)
//     until Scavenge deletes it.
//   - Sort keys with a fraction (after a marker) are new: a binary of this
//     package from before stream lifecycle cannot read a stream that has a
//     marker, so upgrade every process before the first lifecycle write.
//     Tables written before need no migration (their keys are integers).
//   - ListStreams is a Scan of the whole table (strongly consistent), and
//     keeps one entry per stream in memory to sort them; so is Scavenge's
//     search for streams with rules.
//   - Head is the end of the newest commit visible in the index; commits in
//     flight are not counted.
//   - On DynamoDB (not dynalite) the index is eventually consistent: ReadAll
//     may not yet show an append that has returned, for as long as the index
//     lags. ReadStream is strongly consistent, and so are the rules ReadAll
//     reads (they are never taken from the index): a rule hides at once.
//
// # Costs
//
// An append of n events, when it wins at once: 1 consistent Query (the last
// item, RCU = its size / 4 KB; skipped as above), n claim PutItems (1 WCU each), 1 counter UpdateItem (1 WCU), 1
// PutItem of the commit (size / 1 KB WCU, twice: table and index). Two or
// three round trips in sequence (the claims and the counter in parallel).
// A lost race or a refused append adds a void PutItem for its positions; a
// retry with Any repeats it all. An idempotent retry or a duplicate costs a
// BatchGetItem of the claims, a GetItem per claim found and a short read of
// the stream. A stream's rules cost its appends nothing more than their
// copy in each commit (seven numbers, under 100 bytes).
//
// ReadStream: the Query of the chain's end (in parallel with the first
// page; for a ruled stream the first page again when the cut is above
// from or the page ended before the head), a consistent Query per
// page (100 items or 1 MB), plus one for the commit holding from when
// from > 1. ReadAll: one index Query for the commit holding from, an
// eventually consistent index Query per page, a counter read when a page
// comes back empty, index polls while it waits for a gap, and the rule
// reads above. A lifecycle write: the chain's end, the marker's document
// when the last item is a commit, one PutItem (the first for a stream also two flag PutItems); a delete then
// a Query and a BatchWriteItem for its snapshots. LoadSnapshot: its Query
// and the chain's end in parallel. Notify: in-process appends signal at
// once; other processes' appends are seen by reading the counter every
// WithPollInterval (1 s by default). See BENCHMARKS.md for measured times
// against dynalite.
package dynamodb
