package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// Open connects, migrates and owns its pool. (Not run: it needs a server.)
func ExampleOpen() {
	ctx := context.Background()
	s, err := mysql.Open(ctx, "root@tcp(127.0.0.1:3306)/test", mysql.WithTablePrefix("es_"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	res, err := s.Append(ctx, "user-1", eventsource.NoStream, []eventsource.Record{
		{Type: "UserCreated", Codec: "json", Data: []byte(`{"name":"Ada"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.LastVersion)
	for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{StreamPrefixes: []string{"user-"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Position, r.StreamID, r.Type)
	}
}

// New builds a store on a pool the caller owns and keeps owning.
func ExampleNew() {
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	s := mysql.New(db, mysql.WithTablePrefix("orders_"))
	if err := s.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = eventsource.Store(s)
}

// stockLevels is a read model: the last version of each stream, in a table
// of the store's database.
type stockLevels struct{}

func (stockLevels) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'stock_levels'").Scan(&n)
	return n == 1, err
}

func (stockLevels) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS stock_levels (stream VARBINARY(200) PRIMARY KEY, version BIGINT NOT NULL)")
	return err
}

func (stockLevels) Apply(ctx context.Context, tx *sql.Tx, records []eventsource.Record) error {
	for _, r := range records {
		if _, err := tx.ExecContext(ctx, "INSERT INTO stock_levels VALUES (?, ?) ON DUPLICATE KEY UPDATE version = VALUES(version)", r.StreamID, r.Version); err != nil {
			return err
		}
	}
	return nil
}

func (stockLevels) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM stock_levels")
	return err
}

func (stockLevels) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS stock_levels")
	return err
}

// An inline projection is updated in the append's transaction: once Append
// returns, the read model shows it. (Not run: it needs a server.)
func ExampleWithInline() {
	ctx := context.Background()
	s, err := mysql.Open(ctx, "root@tcp(127.0.0.1:3306)/test", mysql.WithInline("stock_levels", stockLevels{}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "sku-1", eventsource.Any, []eventsource.Record{{Type: "Restocked", Codec: "json", Data: []byte(`{"n":5}`)}}); err != nil {
		log.Fatal(err)
	}
	var v int64
	if err := s.DB().QueryRowContext(ctx, "SELECT version FROM stock_levels WHERE stream = 'sku-1'").Scan(&v); err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
}
