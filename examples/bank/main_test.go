package main

import (
	"context"
	"path/filepath"
	"testing"
)

// TestRun runs the example end to end on a temporary SQLite file.
func TestRun(t *testing.T) {
	if err := run(context.Background(), filepath.Join(t.TempDir(), "bank.db")); err != nil {
		t.Fatal(err)
	}
}
