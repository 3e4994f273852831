//go:build !race

package projection_test

const raceDetector = false
