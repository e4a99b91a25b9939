// Command gozeroserver is the go-zero contender of the overload benchmark:
// the handler of internal/server behind go-zero's adaptive shedder
// (core/load), wired as go-zero's rest SheddingHandler wires it (503 when
// Allow refuses, Fail for a 503 answer, Pass otherwise) without its
// per-drop log line. It is a binary of its own because importing go-zero
// has process-wide effects (a CPU sampling goroutine, automaxprocs, logx).
//
//	go run ./bench/overload/cmd/gozeroserver -cpu-threshold 900 -handler slot
//
// It prints "listening ADDR" and serves until its standard input closes.
package main

import (
	"flag"
	"fmt"
	"net/http"

	"github.com/zeromicro/go-zero/core/load"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/blastradius/blastradius/bench/overload/internal/server"
)

func main() {
	server.Main("gozeroserver", func(fs *flag.FlagSet) func() (func(http.Handler) http.Handler, func() string, error) {
		threshold := fs.Int64("cpu-threshold", 900, "go-zero's CPU threshold in millicpu (900, its default, sheds only at >= 90% CPU; 0 lets it shed at any CPU)")
		return func() (func(http.Handler) http.Handler, func() string, error) {
			if *threshold < 0 || *threshold >= 1000 {
				return nil, nil, fmt.Errorf("-cpu-threshold %d must be in [0, 1000)", *threshold)
			}
			logx.Disable()
			load.DisableLog()
			return shedding(load.NewAdaptiveShedder(load.WithCpuThreshold(*threshold))), nil, nil
		}
	})
}

// shedding is go-zero's rest/handler.SheddingHandler without its metrics
// and its log line per drop.
func shedding(shedder load.Shedder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			promise, err := shedder.Allow()
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
			defer func() {
				if cw.code == http.StatusServiceUnavailable {
					promise.Fail()
				} else {
					promise.Pass()
				}
			}()
			next.ServeHTTP(cw, r)
		})
	}
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
