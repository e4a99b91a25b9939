// Package window implements a time-bucketed rolling counter: a fixed number
// of buckets, each covering an equal slice of the window, holding one count
// per series (for example "requests" and "accepts"). It allocates nothing
// after New, starts no goroutine, and rotates lazily: buckets that time has
// left behind are cleared when the counter is next touched.
//
// The counter reads no clock: every call that needs the time takes it as an
// argument, so the caller's clock (real, fake, or a testing/synctest
// bubble's) decides.
//
// Counts can be added in two ways:
//
//   - Add stamps the count into the bucket of the time given;
//   - AddDeferred only increments an atomic, with no time and no lock; the
//     count is stamped into the bucket of the next Add, Flush or Sums.
//     Callers on a hot path use AddDeferred and call Flush every so often
//     (AddDeferred returns the pending count to decide when), which bounds
//     how many counts can land in a later bucket than the one they happened
//     in.
//
// A window of W split into n buckets covers between W·(n−1)/n and W of
// history: the newest bucket is only partly elapsed.
//
// breaker's retry budget and adaptive throttle use it.
package window
