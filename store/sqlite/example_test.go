package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// streamCounts is a read model: how many events each stream has, in a table
// of the store's database.
type streamCounts struct{}

func (streamCounts) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'stream_counts'`).Scan(&n)
	return n == 1, err
}

func (streamCounts) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE stream_counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`)
	return err
}

func (streamCounts) Apply(ctx context.Context, tx *sql.Tx, records []eventsource.Record) error {
	for _, r := range records {
		if _, err := tx.ExecContext(ctx, `INSERT INTO stream_counts VALUES (?, 1)
			ON CONFLICT (stream) DO UPDATE SET n = n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

func (streamCounts) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM stream_counts`)
	return err
}

func (streamCounts) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE stream_counts`)
	return err
}

// An inline projection is updated in the append's transaction: once Append
// returns, the read model shows it.
func ExampleWithInline() {
	dir, err := os.MkdirTemp("", "inline")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.WithInline("stream_counts", streamCounts{}))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if _, err := store.Append(ctx, "order-1", eventsource.NoStream, []eventsource.Record{
		{Type: "OrderPlaced", Codec: "json", Data: []byte(`{"total":42}`)},
		{Type: "OrderPaid", Codec: "json", Data: []byte(`{}`)},
	}); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := store.DB().QueryRowContext(ctx, `SELECT n FROM stream_counts WHERE stream = 'order-1'`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 2
}
