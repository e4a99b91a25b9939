// Package window implements a time-bucketed rolling counter: a fixed number
// of buckets, each covering an equal slice of the window, holding one count
// per series (for example "requests" and "accepts"). It allocates nothing
// after New, starts no goroutine, and rotates lazily: buckets that time has
// left behind are cleared when the counter is next touched.
//
// The clock is injected (a func returning the current time), so the counter
// works inside testing/synctest bubbles and with fake clocks alike.
//
// Counts can be added in two ways:
//
//   - Add stamps the count with the current time (one clock read);
//   - AddDeferred only increments an atomic, with no clock read and no lock;
//     the count is stamped into the bucket that is current at the next Add,
//     Flush, Sum or Sums. Callers on a hot path use AddDeferred and call Flush
//     every so often (AddDeferred returns the pending count to decide when),
//     which bounds how many counts can land in a later bucket than the one
//     they happened in.
//
// A window of W split into n buckets covers between W·(n−1)/n and W of
// history: the newest bucket is only partly elapsed.
//
// breaker's retry budget and adaptive throttler share it; it is generic
// enough for any "events per series over the last W" question.
package window
