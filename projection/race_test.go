//go:build race

package projection_test

// raceDetector: the race detector slows the million-event rebuild test
// about tenfold, so it runs on a tenth of the events.
const raceDetector = true
