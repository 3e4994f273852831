package main

import (
	"context"
	"path/filepath"
	"testing"
)

// TestRunTwice runs the example twice on one file: the second run resumes
// the projector from its checkpoint and the read model stays exact.
func TestRunTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	for i := 0; i < 2; i++ {
		if err := run(context.Background(), path, 100); err != nil {
			t.Fatal(err)
		}
	}
}
