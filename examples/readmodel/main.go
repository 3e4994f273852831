// Command readmodel keeps two read models of the bank up to date, live, in
// the same SQLite file as the events: each account's balance, and a list of
// big movements (500.00 or more). The read models' writes and the
// projector's checkpoint commit in one transaction, so each event is applied
// exactly once, even if the process is killed at any point.
//
//	go run ./examples/readmodel -db bank.db   # run it, press Ctrl-C (or kill -9) half-way, run it again
//	go run ./examples/readmodel -db bank.db -version 2 -drop-old   # rebuild blue/green while it serves
//	go run ./examples/readmodel -db bank.db -tamper   # plant a delivery fault; Verify finds it
//
// The projector applies the accounts with four workers, each account's
// events in order. At the end it checks every balance against the
// aggregate and asks Verify whether each event was handled exactly once.
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

// Bank is the read model: two tables, written in the projector's
// transaction. Prefix names its tables, so a new version of it can be
// rebuilt beside the one serving (blue/green).
type Bank struct{ Prefix string }

func (b Bank) balances() string { return b.Prefix + "balances" }
func (b Bank) big() string      { return b.Prefix + "big_movements" }

func (b Bank) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`, b.balances(), b.big()).Scan(&n)
	return n == 2, err
}

func (b Bank) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS `+b.balances()+` (account TEXT PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL, version INTEGER NOT NULL);
		CREATE TABLE IF NOT EXISTS `+b.big()+` (position INTEGER PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL, at TEXT NOT NULL);`)
	return err
}

func (b Bank) Apply(ctx context.Context, tx *sql.Tx, records []eventsource.Record) error {
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
			_, err = tx.ExecContext(ctx, `INSERT INTO `+b.balances()+` (account, owner, balance, version) VALUES (?, ?, 0, ?)`, r.StreamID, amount.Owner, r.Version)
		case "MoneyDeposited", "MoneyWithdrawn":
			delta := amount.Amount
			if r.Type == "MoneyWithdrawn" {
				delta = -delta
			}
			_, err = tx.ExecContext(ctx, `UPDATE `+b.balances()+` SET balance = balance + ?, version = ? WHERE account = ?`, delta, r.Version, r.StreamID)
			if err == nil && amount.Amount >= 500_00 {
				_, err = tx.ExecContext(ctx, `INSERT INTO `+b.big()+` (position, account, kind, amount, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`,
					int64(r.Position), r.StreamID, r.Type, amount.Amount, r.RecordedAt.Format(time.RFC3339))
			}
		}
		if err != nil {
			return fmt.Errorf("%s at %d: %w", r.Type, r.Position, err)
		}
	}
	return nil
}

func (b Bank) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+b.balances()+`; DELETE FROM `+b.big()+`;`)
	return err
}

func (b Bank) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE `+b.balances()+`; DROP TABLE `+b.big()+`;`)
	return err
}

// version returns the read model of version v: version 1's tables have no
// prefix, version v's are "v{v}_…".
func version(v int) Bank {
	if v <= 1 {
		return Bank{}
	}
	return Bank{Prefix: fmt.Sprintf("v%d_", v)}
}

// config is what the flags ask for.
type config struct {
	path     string
	commands int
	workers  int
	version  int  // the version of the read model to run; a newer one than the live version is rebuilt blue/green
	drop     bool // drop the old version once the new one has taken over
	tamper   bool // plant a fault: move the checkpoint back, as a restore of an old backup of it would
}

func main() {
	var c config
	flag.StringVar(&c.path, "db", "", "SQLite database file (default: a new one in a temporary directory)")
	flag.IntVar(&c.commands, "commands", 200, "how many commands to run")
	flag.IntVar(&c.workers, "workers", 4, "projector workers (accounts are applied in parallel, each in order)")
	flag.IntVar(&c.version, "version", 1, "version of the read model; a version newer than the live one is rebuilt blue/green while the live one serves")
	flag.BoolVar(&c.drop, "drop-old", false, "drop the old version's tables once the new version has taken over")
	flag.BoolVar(&c.tamper, "tamper", false, "plant a delivery fault (move the checkpoint back 10 positions) and show Verify finding it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c config) error {
	if c.path == "" {
		dir, err := os.MkdirTemp("", "eventsource-readmodel-")
		if err != nil {
			return err
		}
		c.path = filepath.Join(dir, "bank.db")
	}
	fmt.Println("event store and read models:", c.path)
	store, err := sqlite.Open(ctx, c.path)
	if err != nil {
		return err
	}
	defer store.Close()
	checkpoints, err := sqlcheckpoint.New(store.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		return err
	}
	live, err := projection.LiveVersion(ctx, checkpoints, "bank")
	if err != nil {
		return err
	}
	if c.tamper {
		if err := tamper(ctx, checkpoints, "bank", live); err != nil {
			return err
		}
	}

	// The live version's projector follows the global log in the
	// background; a newer version asked for rebuilds beside it and takes
	// over when it has caught up.
	newProjector := func(v int) *projection.Projector[*sql.Tx] {
		return projection.NewProjector("bank", store, checkpoints, version(v), projection.WithVersion(v),
			projection.WithWorkers(c.workers), projection.WithFilter(eventsource.Filter{StreamPrefixes: []string{"account-"}}))
	}
	pctx, stopProjectors := context.WithCancel(ctx)
	defer stopProjectors()
	type running struct {
		p    *projection.Projector[*sql.Tx]
		done chan error
	}
	start := func(v int) running {
		r := running{newProjector(v), make(chan error, 1)}
		go func() { r.done <- r.p.Run(pctx) }()
		return r
	}
	serving := start(live)
	var building *running
	if c.version > live {
		b := start(c.version)
		building = &b
		fmt.Printf("rebuilding version %d blue/green while version %d serves\n", c.version, live)
	}

	// A reader serves balances from whichever version is live.
	reads := make(chan int, 1)
	go func() {
		n := 0
		for pctx.Err() == nil {
			v, err := projection.LiveVersion(pctx, checkpoints, "bank")
			if err == nil {
				var total sql.NullInt64
				if store.DB().QueryRowContext(pctx, `SELECT sum(balance) FROM `+version(v).balances()).Scan(&total) == nil {
					n++
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		reads <- n
	}()

	repo := eventsource.New(&bank.Account{}, eventsource.WithStore(store), eventsource.WithStreamPrefix("account-"))
	if err := repo.Bind(&bank.AccountOpened{}, &bank.MoneyDeposited{}, &bank.MoneyWithdrawn{}); err != nil {
		return err
	}
	owners := []string{"ann", "bob", "cho", "dee", "eve", "fay", "gus", "hal"}
	for _, o := range owners {
		_, err := repo.Apply(ctx, &bank.OpenAccount{CommandModel: eventsource.CommandModel{ID: o}, Owner: o})
		if err != nil && !errors.Is(err, bank.ErrAccountExists) {
			return err
		}
	}
	for i := 0; i < c.commands; i++ {
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

	// Wait until the newest version has caught up with the log (and, when
	// rebuilding, taken over), then show it.
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	newest := serving
	if building != nil {
		newest = *building
	}
	for newest.p.Checkpoint().Position < head || (building != nil && live != c.version) {
		select {
		case err := <-newest.done:
			return err
		case err := <-serving.done:
			if building != nil && errors.Is(err, projection.ErrSuperseded) {
				fmt.Printf("version %d took over; version %d stopped (%v)\n", c.version, live, err)
				live = c.version
				serving.done = nil
				continue
			}
			return err
		case <-time.After(5 * time.Millisecond):
		}
		if building != nil && live != c.version {
			if v, err := projection.LiveVersion(ctx, checkpoints, "bank"); err == nil && v == c.version {
				fmt.Printf("version %d took over\n", c.version)
				live = c.version
			}
		}
	}
	stopProjectors()
	fmt.Printf("served %d reads from the live version meanwhile\n", <-reads)
	if building != nil && c.drop {
		old := newProjector(serving.p.Version())
		if err := old.Drop(ctx); err != nil {
			return err
		}
		fmt.Printf("dropped version %d's tables\n", serving.p.Version())
	}
	return report(ctx, store, repo, newest.p, version(live))
}

// tamper plants a delivery fault: it moves the checkpoint of the live
// version back 10 positions, keeping its digests, as restoring an old
// backup of the checkpoint row beside a newer read model would. The
// projector applies those events again, and Verify finds where.
func tamper(ctx context.Context, cps *sqlcheckpoint.Store, name string, live int) error {
	if live > 1 {
		name = fmt.Sprintf("%s@v%d", name, live)
	}
	return cps.InTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cp, err := cps.LoadTx(ctx, tx, name)
		if err != nil || cp.Position < 10 {
			return err
		}
		cp.Position -= 10
		fmt.Printf("tampering: checkpoint of %s moved back from %d to %d\n", name, cp.Position+10, cp.Position)
		return cps.WriteTx(ctx, tx, cp)
	})
}

// report prints the read model beside the aggregates it must match, and
// Verify's bill of delivery.
func report(ctx context.Context, store *sqlite.Store, repo *eventsource.Repository[*bank.Account], p *projection.Projector[*sql.Tx], rm Bank) error {
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	db := store.DB()
	fmt.Printf("balances (read model %q):\n", rm.balances())
	rows, err := db.QueryContext(ctx, `SELECT account, owner, balance, version FROM `+rm.balances()+` ORDER BY account`)
	if err != nil {
		return err
	}
	defer rows.Close()
	exact := true
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
			check, exact = fmt.Sprintf("DIFFERS from the aggregate (%d)", acc.Balance), false
		}
		fmt.Printf("  %-12s %-4s %10d.%02d  v%-4d %s\n", account, owner, balance/100, balance%100, version, check)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var big int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+rm.big()).Scan(&big); err != nil {
		return err
	}
	fmt.Printf("big movements (read model): %d; checkpoint at position %d of %d\n", big, p.Checkpoint().Position, head)
	rep, err := p.Verify(ctx)
	if err != nil {
		return err
	}
	if rep.OK() {
		fmt.Printf("verify: clean bill, %d events handled exactly once in positions %d–%d (%d ranges)\n", rep.Events, rep.From, rep.To, rep.Ranges)
	} else {
		for _, m := range rep.Mismatches {
			fmt.Println("verify:", m)
		}
	}
	if !exact || !rep.OK() {
		return fmt.Errorf("read model of %q is not exact", rm.balances())
	}
	return nil
}
