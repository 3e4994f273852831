package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/cli"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// serve runs `eventsource serve` with args until the test ends and returns
// its base URL.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d", code)
		}
	})
	lines := bufio.NewScanner(pr)
	addr := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+) `)
	for lines.Scan() {
		if m := addr.FindStringSubmatch(lines.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return m[1]
		}
	}
	t.Fatalf("serve printed no address (exit %d)", <-done)
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// serve on a SQLite file with a projector running beside it: the API
// reads the store, and a Prometheus scrape of /metrics shows the
// projection's lag and the appends made through the API.
func TestServe(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if _, err := s.Append(ctx, fmt.Sprint("account-", i), eventsource.Any, []eventsource.Record{{Type: "Opened", Codec: "json", Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	rm := &sqlTally{db: s.DB()}
	pctx, stop := context.WithCancel(ctx)
	caught := make(chan struct{})
	p := projection.NewProjector("tally", s, cps, rm, projection.OnCaughtUp(func() {
		select {
		case caught <- struct{}{}:
		default:
		}
	}))
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	<-caught
	stop()
	<-done

	base := serve(t, "--store", "sqlite://"+path, "--token", "t0ken")
	if code, body := get(t, base+"/api/streams?prefix=account-"); code != 200 || strings.Count(body, "StreamID") != 3 {
		t.Fatalf("streams: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", base+"/api/streams/account-9", strings.NewReader(`{"events":[{"type":"Opened","data":{}}]}`))
	req.Header.Set("Authorization", "Bearer t0ken")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("append through the API: %v %v", res, err)
	}
	res.Body.Close()
	// The projector stopped before that append: one position behind.
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics = get(t, base+"/metrics")
		if strings.Contains(metrics, "eventsource_projection_lag_positions") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lag := regexp.MustCompile(`(?m)^eventsource_projection_lag_positions\{[^}]*projection="tally"[^}]*\} (\d+)$`).FindStringSubmatch(metrics)
	if lag == nil || lag[1] != "1" {
		t.Fatalf("no lag of 1 for tally in the scrape:\n%s", grepLines(metrics, "eventsource_"))
	}
	appended := regexp.MustCompile(`(?m)^eventsource_events_appended_total\{[^}]*eventsource_stream_category="account"[^}]*\} (\d+)$`).FindStringSubmatch(metrics)
	if appended == nil || appended[1] != "1" {
		t.Fatalf("no appended count of 1 in the scrape:\n%s", grepLines(metrics, "eventsource_events"))
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, "eventsource console") {
		t.Fatalf("console page: %d", code)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
