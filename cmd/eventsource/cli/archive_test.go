package cli_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
)

// A store archived to S3 (gofakes3, in process, through the AWS SDK) and
// replayed into PostgreSQL holds the same records, byte for byte; archive
// --verify and replay name a corrupted chunk (exit code 7).
func TestArchiveToS3AndReplay(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	bucket := "s3://backups?region=us-east-1&use_path_style=true&endpoint=" + url.QueryEscape(srv.URL)
	src := "sqlite://" + filepath.Join(t.TempDir(), "bank.db")
	fillURL(t, src)
	out, _, err := run(t, ctx, "-s", src, "archive", "--to", bucket, "--prefix", "bank/", "--chunk", "10")
	if err != nil || !strings.Contains(out, "archived 35 records (positions 1–35) in 4 chunks") {
		t.Fatalf("archive: %q, %v", out, err)
	}
	if out, _, err := run(t, ctx, "-s", src, "archive", "--to", bucket, "--prefix", "bank/"); err != nil || !strings.Contains(out, "nothing new") {
		t.Fatalf("archive again: %q, %v", out, err)
	}
	dst := storeURLs(t)["postgres"](t)
	for range 2 {
		if _, errOut, err := run(t, ctx, "-s", dst, "replay", "--from", bucket, "--prefix", "bank/"); err != nil || !strings.Contains(errOut, "35 records replayed") {
			t.Fatalf("replay: %q, %v", errOut, err)
		}
		if got, want := contents(t, dst), contents(t, src); got != want {
			t.Fatalf("replayed store holds\n%s\nwant\n%s", got, want)
		}
	}
	// Overwrite the second chunk with one bit flipped (through the S3 API,
	// so S3's own checksum of the object is right and only the archive's
	// SHA-256 can tell).
	b, err := blob.OpenBucket(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	key := "bank/chunks/00000000000000000011-00000000000000000020.ndjson.gz"
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := b.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	r := tool(t, ctx, "", "-s", src, "archive", "--to", bucket, "--prefix", "bank/", "--verify")
	if r.code != 7 || !strings.Contains(r.stderr, key) {
		t.Fatalf("verify of a corrupted chunk: exit %d %q", r.code, r.stderr)
	}
	fresh := "sqlite://" + filepath.Join(t.TempDir(), "fresh.db")
	r = tool(t, ctx, "", "-s", fresh, "replay", "--from", bucket, "--prefix", "bank/")
	if r.code != 7 || !strings.Contains(r.stderr, key) || !strings.Contains(r.stderr, "10 records replayed before it") {
		t.Fatalf("replay over a corrupted chunk: exit %d %q", r.code, r.stderr)
	}
}

// copy follows a store into another with a checkpoint file, and takes what
// came since on the next run.
func TestCopyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := "sqlite://" + filepath.Join(dir, "from.db")
	dst := storeURLs(t)["mysql"](t)
	ckpt := filepath.Join(dir, "copy.checkpoint")
	fillURL(t, src)
	if out, _, err := run(t, ctx, "-s", src, "copy", "--to", dst, "--checkpoint", ckpt); err != nil || !strings.Contains(out, "up to source position 35") {
		t.Fatalf("copy: %q, %v", out, err)
	}
	if b, err := os.ReadFile(ckpt); err != nil || strings.TrimSpace(string(b)) != "35" {
		t.Fatalf("checkpoint %q, %v", b, err)
	}
	if _, _, err := run(t, ctx, "-s", src, "append", "account-7", "-t", "Opened"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, ctx, "-s", src, "copy", "--to", dst, "--checkpoint", ckpt); err != nil || !strings.Contains(out, "up to source position 36") {
		t.Fatalf("copy of what came since: %q, %v", out, err)
	}
	if out, _, err := run(t, ctx, "-s", src, "copy", "--to", dst, "--checkpoint", ckpt); err != nil || !strings.Contains(out, "nothing new") {
		t.Fatalf("copy with nothing new: %q, %v", out, err)
	}
	if got, want := contents(t, dst), contents(t, src); got != want {
		t.Fatalf("copied store holds\n%s\nwant\n%s", got, want)
	}
}
