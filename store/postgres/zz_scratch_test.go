package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// scratch: a kept schema for EXPLAIN by hand (not committed).
func TestZZScratch(t *testing.T) {
	if os.Getenv("ZZ_SCRATCH") == "" {
		t.Skip()
	}
	ctx := context.Background()
	p := pgtest.Pool(t)
	p.Exec(ctx, "DROP SCHEMA IF EXISTS zz_scratch CASCADE")
	s := postgres.New(p, postgres.WithSchema("zz_scratch"))
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := s.Append(ctx, fmt.Sprint("acc-", i%50), eventsource.Any, recs(1000, "E")); err != nil {
			t.Fatal(err)
		}
	}
	sql, _ := postgres.ReadAllSQL(ctx, s)
	fmt.Println(sql)
}
