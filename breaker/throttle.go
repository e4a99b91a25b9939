package breaker

import (
	"time"

	"github.com/blastradius/blastradius/internal/window"
)

// throttle window series.
const (
	seriesAttempts = iota
	seriesAccepts
)

// throttle is client-side adaptive throttling from the Google SRE book.
type throttle struct {
	k      float64
	win    *window.Counter
	random func() float64
	now    func() time.Time
}

func newThrottle(c *throttleConfig, now func() time.Time) *throttle {
	w := c.window - c.window%windowBuckets
	return &throttle{k: c.k, win: window.New(w, windowBuckets, 2), random: c.random, now: now}
}

// probability returns max(0, (requests − k·accepts) / (requests + 1)) over
// the window ending at now.
func (t *throttle) probability(now time.Time) float64 {
	var s [2]int64
	t.win.Sums(now, s[:])
	req := float64(s[seriesAttempts])
	return max(0, (req-t.k*float64(s[seriesAccepts]))/(req+1))
}

// reject decides whether to throttle an attempt; a throttled attempt counts
// as a request that was not accepted.
func (t *throttle) reject() bool {
	now := t.now()
	if p := t.probability(now); p > 0 && t.random() < p {
		t.win.Add(now, seriesAttempts, 1)
		return true
	}
	return false
}

// observe counts an attempt that reached fn, stamped with the time it
// ended. Breaker rejections and excluded outcomes (the caller gave up)
// count as neither.
func (t *throttle) observe(out int) {
	switch out {
	case outSuccess:
		t.win.AddDeferred(seriesAttempts, 1)
		t.win.AddDeferred(seriesAccepts, 1)
	case outFailure:
		t.win.AddDeferred(seriesAttempts, 1)
	default:
		return
	}
	t.win.Flush(t.now())
}
