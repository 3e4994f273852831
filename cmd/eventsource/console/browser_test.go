package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// page is a tab of a headless Chromium.
type page struct {
	t   *testing.T
	ctx context.Context
}

// do runs steps, failing the test on an error.
func (p page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// text is the visible text of the element sel (CSS) selects.
func (p page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// poll waits (20 s at most) for a JavaScript expression to be true.
func (p page) poll(what, expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](p page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// browser returns a tab of a headless Debian Chromium driven by chromedp,
// or skips the test (fails it under CI=true) when there is none.
func browser(t *testing.T) page {
	t.Helper()
	path := os.Getenv("ES_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		msg := "no chromium for the browser tests: run scripts/chromium.sh (Debian's package), or set ES_CHROMIUM"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 860))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on a context without a timeout
		t.Fatalf("start chromium: %v", err)
	}
	return page{t, ctx}
}

// screenshot saves the page as NAME.png in ES_SCREENSHOTS (the README's
// pictures come from there), or in the test's temp directory.
func (p page) screenshot(name string) {
	t := p.t
	t.Helper()
	dir := os.Getenv("ES_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", file, len(png))
}

// Open a stream, click an event, read its data; the global log and the
// streams page show what the store holds.
func TestBrowserStream(t *testing.T) {
	e := newEnv(t, "")
	p := browser(t)
	for i := range 3 {
		e.append(fmt.Sprint("account-", i), map[string]string{"teller": "7"}, "AccountOpened", "MoneyDeposited")
	}
	p.do(chromedp.Navigate(e.http.URL+"/#/streams"), chromedp.WaitVisible(css(`[data-testid=stream-link]`)))
	if streams := p.text(`[data-testid=streams]`); strings.Count(streams, "account-") != 3 {
		t.Fatalf("streams page shows %q", streams)
	}
	p.screenshot("streams")
	p.do(chromedp.Click(css(`a[href="#/stream/account-1"]`)), chromedp.WaitVisible(css(`[data-testid=event-row]`)))
	title := p.text(`[data-testid=stream-title]`)
	p.do(chromedp.Click(css(`[data-testid=event-row]:nth-child(2)`)), chromedp.WaitVisible(css(`[data-testid=event-data]`)))
	data, meta := p.text(`[data-testid=event-data]`), p.text(`[data-testid=event-metadata]`)
	if title != "account-1" || strings.TrimSpace(data) != "{\n  \"n\": 1\n}" || !strings.Contains(meta, "teller") || !strings.Contains(meta, "7") {
		t.Fatalf("stream page: title %q, data %q, metadata %q", title, data, meta)
	}
	p.screenshot("stream")
	p.do(chromedp.Navigate(e.http.URL+"/#/log?type=MoneyDeposited"), chromedp.WaitVisible(css(`[data-testid=event-row]`)))
	if rows := eval[int](p, `document.querySelectorAll("[data-testid=event-row]").length`); rows != 3 {
		t.Fatalf("log filtered by type shows %d rows", rows)
	}
	p.screenshot("log")
}

// Event data, types and metadata are text: markup in them never runs.
func TestBrowserRendersDataAsText(t *testing.T) {
	e := newEnv(t, "")
	p := browser(t)
	payload := map[string]string{
		"name":  `<script>window.__xss = "script"</script>`,
		"quote": `"><img src=x onerror="window.__xss = 'img'">`,
		"svg":   `<svg onload="window.__xss = 'svg'"></svg>`,
	}
	data, _ := json.Marshal(payload)
	if _, err := e.store.Append(context.Background(), "evil-1", eventsource.Any, []eventsource.Record{{
		Type: `<img src=x onerror="window.__xss='type'">`, Codec: "json", Data: data,
		Metadata: map[string]string{`<b onmouseover="window.__xss='key'">k</b>`: `"><script>window.__xss='meta'</script>`},
	}}); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.Navigate(e.http.URL+"/#/stream/evil-1"), chromedp.WaitVisible(css(`[data-testid=event-row]`)),
		chromedp.Click(css(`[data-testid=event-row]`)), chromedp.WaitVisible(css(`[data-testid=event-data]`)),
		chromedp.Sleep(300*time.Millisecond)) // time for an injected handler to fire
	shown := p.text(`[data-testid=event-data]`)
	if xss := eval[any](p, `window.__xss === undefined ? null : window.__xss`); xss != nil {
		t.Fatalf("injected script ran: window.__xss = %v", xss)
	}
	if n := eval[int](p, `document.querySelectorAll("main img, main script, main svg, main b").length`); n != 0 {
		t.Fatalf("%d elements from event data are in the page", n)
	}
	for _, v := range payload {
		if !strings.Contains(shown, strings.ReplaceAll(v, `"`, `\"`)) {
			t.Fatalf("the data shown %q does not hold %q as text", shown, v)
		}
	}
	if typ := p.text(`[data-testid=event-row] td:nth-child(3)`); !strings.Contains(typ, "<img") {
		t.Fatalf("the type shown %q is not the literal markup", typ)
	}
	p.screenshot("escaping")
}

// Follow the live tail while events are appended.
func TestBrowserLiveTail(t *testing.T) {
	e := newEnv(t, "")
	p := browser(t)
	e.append("before-1", nil, "Old")
	p.do(chromedp.Navigate(e.http.URL+"/#/tail"), chromedp.WaitVisible(css(`[data-testid=tail-status]`)))
	p.poll("the tail to catch up", `document.querySelector("[data-testid=tail-status]").textContent.includes("caught up")`)
	for i := range 5 {
		e.append(fmt.Sprint("live-", i%2), nil, fmt.Sprint("Live", i))
	}
	p.poll("five live rows", `document.querySelectorAll("[data-testid=event-row]").length === 5`)
	types, status := p.text(`[data-testid=events] tbody`), p.text(`[data-testid=tail-status]`)
	if strings.Contains(types, "Old") || !strings.Contains(types, "Live0") || !strings.Contains(types, "Live4") ||
		strings.Index(types, "Live4") > strings.Index(types, "Live0") || !strings.Contains(status, "5 events") {
		t.Fatalf("tail shows %q (status %q); want Live4 … Live0, newest first, and not the old event", types, status)
	}
	p.screenshot("tail")
}

// Reset a projection from the page and see its status change; stop a
// running one and see it stop.
func TestBrowserProjectionControls(t *testing.T) {
	e := newEnv(t, "tok3n")
	p := browser(t)
	for i := range 4 {
		e.append(fmt.Sprint("a-", i), nil, "One", "Two")
	}
	e.run("tally", projection.ErrorPolicy{})() // caught up, then stopped
	cell := func(testid string) string {
		return fmt.Sprintf(`[data-testid=projection][data-name=tally] [data-testid=%s]`, testid)
	}
	p.do(chromedp.Navigate(e.http.URL+"/#/projections"), chromedp.WaitVisible(css(`#token`)),
		chromedp.SendKeys(css(`#token`), "tok3n\n"), chromedp.WaitVisible(css(cell("reset"))))
	if pos := p.text(cell("position")); pos != "8" {
		t.Fatalf("position %q, want 8", pos)
	}
	p.do(chromedp.Click(css(cell("reset"))))
	p.poll("the reset request on the page", fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === "reset"`, cell("request")))
	p.screenshot("projections-reset")
	// A projector takes the reset: it rebuilds, and the page shows the
	// request gone and the projection at the head again.
	stop := e.run("tally", projection.ErrorPolicy{})
	defer func() { stop() }()
	p.poll("the reset done", fmt.Sprintf(`document.querySelector(%q).textContent === "" && document.querySelector(%q).textContent === "8"`, cell("request"), cell("position")))
	p.do(chromedp.Click(css(cell("stop"))))
	p.poll("the projection stopped", fmt.Sprintf(`document.querySelector(%q).textContent.startsWith("stopped")`, cell("status")))
	if lines := eval[int](p, `document.querySelectorAll("[data-testid=lag-chart] polyline").length`); lines != 1 {
		t.Fatalf("lag chart has %d lines", lines)
	}
	p.screenshot("projections")
}

// The tracer follows a correlation ID and its causes across streams.
func TestBrowserTracer(t *testing.T) {
	e := newEnv(t, "")
	p := browser(t)
	e.append("order-1", map[string]string{"correlation_id": "req-42"}, "OrderPlaced")
	h, _ := eventsource.ReadStreamAll(context.Background(), e.store, "order-1")
	e.append("payment-7", map[string]string{"causation_id": h[0].EventID}, "PaymentTaken")
	e.append("other-1", nil, "Unrelated")
	p.do(chromedp.Navigate(e.http.URL+"/#/trace"), chromedp.WaitVisible(css(`[data-testid=trace-id]`)),
		chromedp.SendKeys(css(`[data-testid=trace-id]`), "req-42\n"), chromedp.WaitVisible(css(`[data-testid=event-row]`)))
	if rows := p.text(`[data-testid=events] tbody`); !strings.Contains(rows, "order-1") || !strings.Contains(rows, "payment-7") || strings.Contains(rows, "other-1") {
		t.Fatalf("tracer shows %q", rows)
	}
	p.screenshot("tracer")
}
