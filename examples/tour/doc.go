// Command tour replays the production incidents blastradius exists for
// (I1–I5 in README.md), each twice in one process over loopback: first
// without blastradius, then with it. It prints one table with the figures
// that matter side by side and exits 0 only if every "with" figure meets its
// target. Every figure is measured live by the run.
//
//	go run ./examples/tour            # all incidents
//	go run ./examples/tour -only I2   # one incident
//	go run ./examples/tour -json      # machine-readable
//	go run ./examples/tour -redis 127.0.0.1:6379   # the fleets of I2 and I5 on a real Redis
package main
