package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

type Deposited struct {
	eventsource.Model
	Amount int
}

type Account struct{ Balance int }

func (a *Account) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *Deposited:
		a.Balance += e.Amount
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

func databaseURL() string {
	if u := os.Getenv("ES_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Open a store (it migrates its tables) and use it with a repository. The
// examples need a server, so they have no Output and are compiled but not
// run by go test; TestExamples runs them.
func Example() {
	ctx := context.Background()
	store, err := postgres.Open(ctx, databaseURL(), postgres.WithSchema("es_example"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	repo := eventsource.New(&Account{}, eventsource.WithStore(store), eventsource.WithStreamPrefix("account-"))
	if err := repo.Bind(&Deposited{}); err != nil {
		fmt.Println(err)
		return
	}
	err = repo.Save(ctx,
		&Deposited{Model: eventsource.Model{ID: "42", Version: 1}, Amount: 10},
		&Deposited{Model: eventsource.Model{ID: "42", Version: 2}, Amount: 5},
	)
	fmt.Println(err)
	account, err := repo.Load(ctx, "42")
	fmt.Println(account.Balance, err)
	// 15 <nil>
}

// Append events in the same transaction as a write of your own: both commit,
// or neither does.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	store := postgres.New(pool, postgres.WithSchema("es_example"))
	defer store.Close()
	if err := store.Migrate(ctx); err != nil { // AppendTx does not migrate
		fmt.Println(err)
		return
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tx.Rollback(ctx)
	res, err := store.AppendTx(ctx, tx, "order-7", eventsource.NoStream, []eventsource.Record{
		{Type: "OrderPlaced", Codec: "json", Data: []byte(`{"total":42}`)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS es_example.outbox (stream text, version bigint)"); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := tx.Exec(ctx, "INSERT INTO es_example.outbox VALUES ($1, $2)", res.StreamID, res.LastVersion); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.LastVersion, tx.Commit(ctx))
	// 1 <nil>
}

// balances is a read model: each account's balance, in a table of the
// store's schema, kept by an inline projection.
type balances struct{}

func (balances) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, "SELECT to_regclass('es_example.balances') IS NOT NULL").Scan(&ok)
	return ok, err
}

func (balances) Init(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "CREATE TABLE es_example.balances (account text PRIMARY KEY, events bigint NOT NULL)")
	return err
}

func (balances) Apply(ctx context.Context, tx pgx.Tx, records []eventsource.Record) error {
	for _, r := range records {
		if _, err := tx.Exec(ctx, `INSERT INTO es_example.balances VALUES ($1, 1)
			ON CONFLICT (account) DO UPDATE SET events = balances.events + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

func (balances) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "TRUNCATE es_example.balances")
	return err
}

func (balances) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "DROP TABLE es_example.balances")
	return err
}

// An inline projection is updated in the append's transaction: once Append
// returns, the read model shows it.
func ExampleWithInline() {
	ctx := context.Background()
	store, err := postgres.Open(ctx, databaseURL(), postgres.WithSchema("es_example"), postgres.WithInline("balances", balances{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	if _, err := store.Append(ctx, "account-7", eventsource.Any, []eventsource.Record{
		{Type: "Deposited", Codec: "json", Data: []byte(`{"Amount":10}`)},
	}); err != nil {
		fmt.Println(err)
		return
	}
	var n int
	err = store.Pool().QueryRow(ctx, "SELECT events FROM es_example.balances WHERE account = 'account-7'").Scan(&n)
	fmt.Println(n, err)
	// 1 <nil>
}

// TestExamples runs the examples against the test server, in a schema of
// their own that is dropped before and after.
func TestExamples(t *testing.T) {
	p := pgtest.Pool(t)
	t.Setenv("ES_TEST_POSTGRES_URL", testenv.Postgres.URL(t))
	drop := func() {
		if _, err := p.Exec(context.Background(), "DROP SCHEMA IF EXISTS es_example CASCADE"); err != nil {
			t.Fatal(err)
		}
	}
	drop()
	t.Cleanup(drop)
	Example()
	ExampleStore_AppendTx()
	ExampleWithInline()
	var balance, outbox int
	ctx := context.Background()
	if err := p.QueryRow(ctx, "SELECT count(*) FROM es_example.es_events WHERE stream_id = 'account-42'").Scan(&balance); err != nil || balance != 2 {
		t.Fatalf("Example stored %d events (%v), want 2", balance, err)
	}
	if err := p.QueryRow(ctx, "SELECT count(*) FROM es_example.outbox").Scan(&outbox); err != nil || outbox != 1 {
		t.Fatalf("ExampleStore_AppendTx wrote %d outbox rows (%v), want 1", outbox, err)
	}
	var events int
	if err := p.QueryRow(ctx, "SELECT events FROM es_example.balances WHERE account = 'account-7'").Scan(&events); err != nil || events != 1 {
		t.Fatalf("ExampleWithInline: the read model counts %d (%v), want 1", events, err)
	}
}
