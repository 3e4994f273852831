package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource/internal/testenv"
)

// TestRun runs the example end to end on a temporary SQLite file.
func TestRun(t *testing.T) {
	if err := run(context.Background(), filepath.Join(t.TempDir(), "bank.db"), ""); err != nil {
		t.Fatal(err)
	}
}

// TestRunOnEveryStore runs the example unchanged on each server store.
func TestRunOnEveryStore(t *testing.T) {
	stores := map[string]string{
		"memory":   "memory://",
		"postgres": testenv.Postgres.URL(t) + "&prefix=bankexample_",
		"mysql":    "mysql://" + strings.NewReplacer("tcp(", "", ")", "").Replace(testenv.MySQL.URL(t)) + "?prefix=bankexample_",
		"dynamodb": "dynamodb://bankexample?create=true&endpoint=" + url.QueryEscape(testenv.DynamoDB.URL(t)),
	}
	for name, u := range stores {
		t.Run(name, func(t *testing.T) {
			if err := run(context.Background(), "", u); err != nil {
				t.Fatal(err)
			}
		})
	}
}
