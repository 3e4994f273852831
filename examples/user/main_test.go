package main

import (
	"context"
	"testing"
)

func TestRun(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
