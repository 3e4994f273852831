// Package pgcheckpoint keeps projection checkpoints and leases in PostgreSQL
// through pgx v5. It is a projection.TxCheckpointStore[pgx.Tx]: a read model in the
// same database writes its rows in the transaction that also writes the
// projection's checkpoint, so each event is applied exactly once, even when
// the process is killed at any point. Where the events come from does not
// matter (store/postgres, SQLite, anything); the promise rests on the read
// model and the checkpoint sharing one database.
//
//	cps, err := pgcheckpoint.New(pool, pgcheckpoint.WithSchema("app"))
//	p := projection.NewProjector("balances", events, cps, &Balances{})
//	err = p.Run(ctx)
//
// A read model implements projection.ReadModel[pgx.Tx]; every method gets
// the transaction to write in:
//
//	type Balances struct{}
//
//	func (Balances) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
//		var ok bool
//		err := tx.QueryRow(ctx, `SELECT to_regclass('app.balances') IS NOT NULL`).Scan(&ok)
//		return ok, err
//	}
//
//	func (Balances) Init(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, `CREATE TABLE app.balances (account text PRIMARY KEY, cents bigint NOT NULL)`)
//		return err
//	}
//
//	func (Balances) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
//		for _, r := range recs {
//			var d struct{ Cents int64 }
//			if err := json.Unmarshal(r.Data, &d); err != nil {
//				return err
//			}
//			if _, err := tx.Exec(ctx, `INSERT INTO app.balances AS b (account, cents) VALUES ($1, $2)
//				ON CONFLICT (account) DO UPDATE SET cents = b.cents + EXCLUDED.cents`, r.StreamID, d.Cents); err != nil {
//				return err
//			}
//		}
//		return nil
//	}
//
//	func (Balances) Reset(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, `TRUNCATE app.balances`)
//		return err
//	}
//
//	func (Balances) Delete(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, `DROP TABLE app.balances`)
//		return err
//	}
//
// PostgreSQL's DDL is transactional, so Init, Reset and Delete are atomic
// with the checkpoint too.
//
// # Table
//
// One table, {prefix}projections ("es_projections" by default), in the
// schema of WithSchema or the connection's search_path, created on first use
// (CREATE TABLE IF NOT EXISTS under a transaction-scoped advisory lock, so
// processes starting together do not trip over each other); a table made
// before checkpoints kept progress gets the progress column then (ALTER
// TABLE, only when it is missing, so old tables keep working). One row per
// projection:
//
//	name        text PRIMARY KEY
//	position    bigint       last position handled
//	state       bytea        encoded state of a projection.Projection; NULL for read models
//	status      text         projection.Status
//	error       text         why it faulted; '' otherwise
//	faulted_at  bigint       position of the event that faulted it
//	skipped     bigint[]     positions skipped on request, oldest first; NULL when none
//	request     text         pending projection.Request
//	owner       text         lease holder; '' when free
//	lease_until timestamptz  lease expiry, by the database's clock; NULL when free
//	updated_at  timestamptz  last SaveTx or WriteTx, by the database's clock
//	progress    bytea        what a projector keeps beyond position, as one value
//	                         (projection.MarshalProgress: Done, Digests, Parked,
//	                         versions, horizon); NULL when there is none
//
// Positions are stored as bigint: they must stay below 2^63, which every
// store in this module guarantees.
//
// # Leases and fencing
//
// Lease times are taken from the database's clock (clock_timestamp()), not
// from the processes': the instances of a projection may run on hosts whose
// clocks disagree, and they still agree on when a lease expires. (The SQLite
// and MySQL store, projection/sqlcheckpoint, uses the process clock instead.)
// Acquire locks the row (SELECT … FOR UPDATE) and takes the lease only if it
// is free, already this owner's, or expired. SaveTx locks the row in the
// caller's transaction and checks the owner before writing, so an instance
// whose lease was taken over cannot commit a batch: its transaction fails
// with projection.ErrLeaseLost, and the read model's writes roll back with
// it.
//
// LoadTx locks the row the same way, creating it first if it is missing,
// and reads it: a parallel projector's workers merge each commit into the
// checkpoint they read under that lock (their SaveTx still checks the
// owner). Changes that need no lease (parked events replayed or discarded
// by an operator, a blue/green take-over, Drop) write with WriteTx, which
// writes what SaveTx writes and the request, and leaves the owner and
// lease alone. A LoadTx waits for any other transaction holding the row
// (LoadTx, SaveTx, Acquire) to end.
package pgcheckpoint
