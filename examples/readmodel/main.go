// Command readmodel keeps two read models of the bank up to date, live, in
// the same SQLite file as the events: each account's balance, and a list of
// big movements (500.00 or more). The read models' writes and the
// projector's checkpoint commit in one transaction, so each event is applied
// exactly once, even if the process is killed at any point.
//
//	go run ./examples/readmodel -db bank.db   # run it, press Ctrl-C half-way, run it again
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/examples/internal/bank"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Bank is the read model: two tables, written in the projector's transaction.
type Bank struct{}

func (Bank) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('balances', 'big_movements')`).Scan(&n)
	return n == 2, err
}

func (Bank) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL, version INTEGER NOT NULL);
		CREATE TABLE IF NOT EXISTS big_movements (position INTEGER PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL, at TEXT NOT NULL);`)
	return err
}

func (Bank) Apply(ctx context.Context, tx *sql.Tx, records []eventsource.Record) error {
	for _, r := range records {
		var amount struct {
			Amount int64
			Owner  string
		}
		if err := json.Unmarshal(r.Data, &amount); err != nil {
			return err
		}
		var err error
		switch r.Type {
		case "AccountOpened":
			_, err = tx.ExecContext(ctx, `INSERT INTO balances (account, owner, balance, version) VALUES (?, ?, 0, ?)`, r.StreamID, amount.Owner, r.Version)
		case "MoneyDeposited", "MoneyWithdrawn":
			delta := amount.Amount
			if r.Type == "MoneyWithdrawn" {
				delta = -delta
			}
			_, err = tx.ExecContext(ctx, `UPDATE balances SET balance = balance + ?, version = ? WHERE account = ?`, delta, r.Version, r.StreamID)
			if err == nil && amount.Amount >= 500_00 {
				_, err = tx.ExecContext(ctx, `INSERT INTO big_movements (position, account, kind, amount, at) VALUES (?, ?, ?, ?, ?)`,
					int64(r.Position), r.StreamID, r.Type, amount.Amount, r.RecordedAt.Format(time.RFC3339))
			}
		}
		if err != nil {
			return fmt.Errorf("%s at %d: %w", r.Type, r.Position, err)
		}
	}
	return nil
}

func (Bank) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM balances; DELETE FROM big_movements;`)
	return err
}

func (Bank) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE balances; DROP TABLE big_movements;`)
	return err
}

func main() {
	path := flag.String("db", "", "SQLite database file (default: a new one in a temporary directory)")
	commands := flag.Int("commands", 200, "how many commands to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *path, *commands); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path string, commands int) error {
	if path == "" {
		dir, err := os.MkdirTemp("", "eventsource-readmodel-")
		if err != nil {
			return err
		}
		path = filepath.Join(dir, "bank.db")
	}
	fmt.Println("event store and read models:", path)
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	checkpoints, err := sqlcheckpoint.New(store.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		return err
	}

	// The projector follows the global log live, in the background.
	projector := projection.NewProjector("bank", store, checkpoints, Bank{},
		projection.WithFilter(eventsource.Filter{StreamPrefixes: []string{"account-"}}))
	pctx, stopProjector := context.WithCancel(ctx)
	defer stopProjector()
	projected := make(chan error, 1)
	go func() { projected <- projector.Run(pctx) }()

	repo := eventsource.New(&bank.Account{}, eventsource.WithStore(store), eventsource.WithStreamPrefix("account-"))
	if err := repo.Bind(&bank.AccountOpened{}, &bank.MoneyDeposited{}, &bank.MoneyWithdrawn{}); err != nil {
		return err
	}
	owners := []string{"ann", "bob", "cho", "dee"}
	for _, o := range owners {
		_, err := repo.Apply(ctx, &bank.OpenAccount{CommandModel: eventsource.CommandModel{ID: o}, Owner: o})
		if err != nil && !errors.Is(err, bank.ErrAccountExists) {
			return err
		}
	}
	for i := 0; i < commands; i++ {
		id := owners[rand.IntN(len(owners))]
		amount := int64(rand.IntN(1000_00)) + 1
		var cmd eventsource.Command = &bank.Deposit{CommandModel: eventsource.CommandModel{ID: id}, Amount: amount}
		if rand.IntN(3) == 0 {
			cmd = &bank.Withdraw{CommandModel: eventsource.CommandModel{ID: id}, Amount: amount}
		}
		if _, err := repo.Apply(ctx, cmd); err != nil && !errors.Is(err, bank.ErrInsufficientFunds) {
			return err
		}
	}

	// Wait until the read models have caught up with the log, then show them.
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	for projector.Checkpoint().Position < head {
		select {
		case err := <-projected:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopProjector()
	<-projected

	db := store.DB()
	fmt.Println("balances (read model):")
	rows, err := db.QueryContext(ctx, `SELECT account, owner, balance, version FROM balances ORDER BY account`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var account, owner string
		var balance, version int64
		if err := rows.Scan(&account, &owner, &balance, &version); err != nil {
			return err
		}
		acc, err := repo.Load(ctx, account[len("account-"):])
		if err != nil {
			return err
		}
		check := "matches the aggregate"
		if acc.Balance != balance {
			check = fmt.Sprintf("DIFFERS from the aggregate (%d)", acc.Balance)
		}
		fmt.Printf("  %-12s %-4s %10d.%02d  v%-4d %s\n", account, owner, balance/100, balance%100, version, check)
		if acc.Balance != balance {
			return fmt.Errorf("read model of %s is not exact", account)
		}
	}
	var big int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM big_movements`).Scan(&big); err != nil {
		return err
	}
	fmt.Printf("big movements (read model): %d; checkpoint at position %d of %d\n", big, projector.Checkpoint().Position, head)
	return rows.Err()
}
