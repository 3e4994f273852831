package main

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunTwice runs the example twice on one file: the second run resumes
// the projector from its checkpoint and the read model stays exact.
func TestRunTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	for i := 0; i < 2; i++ {
		if err := run(context.Background(), config{path: path, commands: 100, workers: 4, version: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBlueGreen rebuilds version 2 while version 1 serves and commands
// run, drops version 1, and runs version 2 again.
func TestBlueGreen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	ctx := context.Background()
	if err := run(ctx, config{path: path, commands: 300, workers: 4, version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, config{path: path, commands: 300, workers: 2, version: 2, drop: true}); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, config{path: path, commands: 50, workers: 3, version: 2}); err != nil {
		t.Fatal(err)
	}
}

// TestTamper: a checkpoint moved back makes the projector apply events
// twice; the balances differ and Verify says where.
func TestTamper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	ctx := context.Background()
	if err := run(ctx, config{path: path, commands: 100, workers: 4, version: 1}); err != nil {
		t.Fatal(err)
	}
	err := run(ctx, config{path: path, commands: 10, workers: 4, version: 1, tamper: true})
	if err == nil || !strings.Contains(err.Error(), "not exact") {
		t.Fatalf("run after tampering = %v, want the read model reported not exact", err)
	}
}

// TestSurvivesKill9 kills the example's process with SIGKILL at random
// moments while it runs commands and projects; a last run finds every
// balance exact and Verify's bill clean.
func TestSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "readmodel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "bank.db")
	for i := 0; i < 4; i++ {
		cmd := exec.Command(bin, "-db", path, "-commands", "5000", "-workers", "4")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+rand.IntN(1500)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d ended with %v before the kill; make it longer", i, err)
		}
	}
	out, err := exec.Command(bin, "-db", path, "-commands", "20").CombinedOutput()
	if err != nil {
		t.Fatalf("run after the kills: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "verify: clean bill") || strings.Contains(string(out), "DIFFERS") {
		t.Fatalf("run after the kills:\n%s", out)
	}
	t.Logf("%s", out)
	_ = os.Remove(bin)
}
