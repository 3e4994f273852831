package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	for range 2 { // a second run finds the file and adds another user
		if err := run(context.Background(), path); err != nil {
			t.Fatal(err)
		}
	}
}

// The README shows this program as the first one to try: it must be this
// file, to the byte, so that it compiles and runs as the test above does.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- examples/user/main.go -->\n```go\n"
	_, block, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md has no %q block", strings.TrimSpace(marker))
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("README.md: the first program's block does not end")
	}
	if block != string(src) {
		t.Fatal("README.md's first program differs from examples/user/main.go: copy the file into the README")
	}
}
