package breaker

import "github.com/blastradius/blastradius/internal/window"

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
}

func newThrottle(c *config) (*throttle, error) {
	w := c.throttleWin - c.throttleWin%windowBuckets
	win, err := window.New(w, windowBuckets, 2, c.now)
	if err != nil {
		return nil, err
	}
	return &throttle{k: c.throttleK, win: win, random: c.random}, nil
}

// probability returns max(0, (requests − k·accepts) / (requests + 1)) over
// the window.
func (t *throttle) probability() float64 {
	var s [2]int64
	t.win.Sums(s[:])
	req := float64(s[seriesAttempts])
	return max(0, (req-t.k*float64(s[seriesAccepts]))/(req+1))
}

// reject decides whether to throttle an attempt; a throttled attempt counts
// as a request that was not accepted.
func (t *throttle) reject() bool {
	p := t.probability()
	if p > 0 && t.random() < p {
		t.win.Add(seriesAttempts, 1)
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
	t.win.Flush()
}
