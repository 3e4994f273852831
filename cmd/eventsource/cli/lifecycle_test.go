package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestStreamLifecycle: a user truncates, sets a retention rule and values,
// deletes softly and for good, and scavenges, from the command line.
func TestStreamLifecycle(t *testing.T) {
	ctx := context.Background()
	store, _ := sqliteURL(t)
	for i := 0; i < 5; i++ {
		if r := tool(t, ctx, "", "-s", store, "append", "acct-1", "-t", "Deposited"); r.code != 0 {
			t.Fatalf("append: %+v", r)
		}
	}
	if r := tool(t, ctx, "", "-s", store, "streams", "truncate", "acct-1", "--before", "4"); r.code != 0 || !strings.Contains(r.stdout, "version 1") {
		t.Fatalf("truncate: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "read", "acct-1"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, " v4 ") {
		t.Fatalf("read after truncate --before 4: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "streams", "set-meta", "acct-1", "--max-age", "720h", "--value", "owner=ops"); r.code != 0 || !strings.Contains(r.stdout, "version 2") {
		t.Fatalf("set-meta: %+v", r)
	}
	r := tool(t, ctx, "", "-s", store, "streams", "meta", "acct-1")
	var md struct {
		MetadataVersion int64             `json:"metadata_version"`
		TruncateBefore  int64             `json:"truncate_before"`
		MaxAge          string            `json:"max_age"`
		Values          map[string]string `json:"values"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &md); err != nil || md.MetadataVersion != 2 || md.TruncateBefore != 4 || md.MaxAge != "720h0m0s" || md.Values["owner"] != "ops" {
		t.Fatalf("meta = %+v (%v) from %+v", md, err, r)
	}
	// A stale --expected is a conflict; bad rules are usage errors.
	args := []string{"-s", store, "streams", "set-meta", "acct-1", "--max-count", "3", "--expected", "1"}
	wantFail(t, args, tool(t, ctx, "", args...), 4, "metadata")
	args = []string{"-s", store, "streams", "set-meta", "acct-1", "--max-count", "-3"}
	wantFail(t, args, tool(t, ctx, "", args...), 2, "MaxCount")
	args = []string{"-s", store, "streams", "set-meta", "acct-1"}
	wantFail(t, args, tool(t, ctx, "", args...), 2, "nothing to change")

	if r := tool(t, ctx, "", "-s", store, "streams", "delete", "acct-1", "--expected", "5"); r.code != 0 || !strings.Contains(r.stdout, "soft") {
		t.Fatalf("delete: %+v", r)
	}
	args = []string{"-s", store, "read", "acct-1"}
	wantFail(t, args, tool(t, ctx, "", args...), 3)
	if r := tool(t, ctx, "", "-s", store, "append", "acct-1", "-t", "Reopened", "--expected", "no-stream"); r.code != 0 || !strings.Contains(r.stdout, "version 6") {
		t.Fatalf("append after a soft delete: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "streams", "delete", "acct-1", "--hard"); r.code != 0 || !strings.Contains(r.stdout, "tombstoned") {
		t.Fatalf("delete --hard: %+v", r)
	}
	args = []string{"-s", store, "append", "acct-1", "-t", "Zombie"}
	wantFail(t, args, tool(t, ctx, "", args...), 5, "deleted for good")
	if r := tool(t, ctx, "", "-s", store, "streams", "list"); strings.Contains(r.stdout, "acct-1") {
		t.Fatalf("streams list still lists a tombstoned stream: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "scavenge"); r.code != 0 || !strings.Contains(r.stdout, "scavenged 1 stream, removed 6 records") {
		t.Fatalf("scavenge: %+v", r)
	}
	if r := tool(t, ctx, "", "-s", store, "scavenge"); r.code != 0 || !strings.Contains(r.stdout, "removed 0 records") {
		t.Fatalf("second scavenge: %+v", r)
	}
}
