// Command bank runs a small bank on the embedded SQLite store: it opens an
// account, has a withdrawal refused, lets eight tellers deposit at once (their
// version conflicts resolved by Apply's retries) and prints the history.
//
//	go run ./examples/bank             # a new SQLite database in a temporary directory
//	go run ./examples/bank -db bank.db # or a file you keep
//	go run ./examples/bank -store 'dynamodb://bank?endpoint=http://127.0.0.1:4567&create=true'
//	go run ./examples/bank -store 'postgres://postgres@127.0.0.1/test?sslmode=disable'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/examples/internal/bank"
	_ "github.com/eventsource-go/eventsource/store/dynamodb" // the stores -store may name
	_ "github.com/eventsource-go/eventsource/store/memory"
	_ "github.com/eventsource-go/eventsource/store/mysql"
	_ "github.com/eventsource-go/eventsource/store/nats"
	_ "github.com/eventsource-go/eventsource/store/postgres"
	_ "github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/storeurl"
)

func main() {
	path := flag.String("db", "", "SQLite database file (default: a new one in a temporary directory)")
	url := flag.String("store", "", "any store by URL (sqlite://, postgres://, mysql://, dynamodb://, nats://, memory://); overrides -db")
	encrypt := flag.Bool("encrypt", false, "encrypt each account's events with its own key (kept in memory), then shred Ann's")
	flag.Parse()
	if err := run(context.Background(), *path, *url, *encrypt); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path, url string, encrypt bool) error {
	if url == "" {
		if path == "" {
			dir, err := os.MkdirTemp("", "eventsource-bank-")
			if err != nil {
				return err
			}
			path = filepath.Join(dir, "bank.db")
		}
		url = "sqlite://" + path
	}
	fmt.Println("event store:", url)
	store, err := storeurl.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()

	// With -encrypt, each account's events are sealed with a key of its own;
	// deleting that key later makes them unreadable for good.
	keys := encryption.NewMemoryKeyStore()
	serializer := eventsource.NewRegistry(nil)
	if encrypt {
		serializer = eventsource.NewRegistry(encryption.NewCodec(jsoncodec.New(), keys))
	}
	repo := eventsource.New(&bank.Account{},
		eventsource.WithStore(store),
		eventsource.WithSerializer(serializer),
		eventsource.WithStreamPrefix("account-"), // the default retry policy resolves the tellers' conflicts below
	)
	if err := repo.Bind(&bank.AccountOpened{}, &bank.MoneyDeposited{}, &bank.MoneyWithdrawn{}); err != nil {
		return err
	}

	id := fmt.Sprintf("acc-%d", time.Now().UnixNano())
	if _, err := repo.Apply(ctx, &bank.OpenAccount{CommandModel: eventsource.CommandModel{ID: id}, Owner: "Ann"}); err != nil {
		return err
	}
	if _, err := repo.Apply(ctx, &bank.Deposit{CommandModel: eventsource.CommandModel{ID: id}, Amount: 100_00}); err != nil {
		return err
	}

	// A command the account refuses: nothing is stored.
	_, err = repo.Apply(ctx, &bank.Withdraw{CommandModel: eventsource.CommandModel{ID: id}, Amount: 500_00})
	if !errors.Is(err, bank.ErrInsufficientFunds) {
		return fmt.Errorf("expected the withdrawal to be refused, got %v", err)
	}
	fmt.Println("refused:", err)

	// Eight tellers deposit at once. Each Apply loads the account, decides,
	// and saves expecting the version it loaded; the losers of each race get
	// a concurrency conflict, and Apply reloads and tries again.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for teller := 1; teller <= 8; teller++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := eventsource.ContextWithMetadata(ctx, map[string]string{"teller": fmt.Sprint(teller)})
			_, err := repo.Apply(ctx, &bank.Deposit{CommandModel: eventsource.CommandModel{ID: id}, Amount: 10_00})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}

	acc, err := repo.Load(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("%s's account %s: balance %d.%02d at version %d\n", acc.Owner, acc.ID, acc.Balance/100, acc.Balance%100, acc.Version)
	if acc.Balance != 180_00 {
		return fmt.Errorf("balance %d, want 18000", acc.Balance)
	}

	history, err := repo.History(ctx, id)
	if err != nil {
		return err
	}
	for _, r := range history {
		data := string(r.Data)
		if encrypt {
			data = fmt.Sprintf("(%d encrypted bytes, codec %s)", len(r.Data), r.Codec)
		}
		fmt.Printf("  v%d  position %-4d %-15s %s %v\n", r.Version, r.Position, r.Type, data, r.Metadata)
	}
	if encrypt {
		// Ann asks to be forgotten: delete her key (crypto-shredding).
		if err := keys.Delete(ctx, id); err != nil {
			return err
		}
		_, err := repo.Load(ctx, id)
		if !errors.Is(err, eventsource.ErrShredded) {
			return fmt.Errorf("after shredding, Load = %v, want ErrShredded", err)
		}
		fmt.Println("after deleting the key:", err)
	}
	return nil
}
