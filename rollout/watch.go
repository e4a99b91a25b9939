package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"
)

// WatchOption configures Registry.Watch. A nil WatchOption is skipped.
type WatchOption interface {
	applyWatch(*watchConfig) error
}

type watchConfig struct {
	interval time.Duration
	onReload func(ConfigInfo, error)
}

type watchOption func(*watchConfig) error

func (f watchOption) applyWatch(c *watchConfig) error { return f(c) }

// WithPollInterval sets how often Watch reads the file. The default is one
// second.
func WithPollInterval(d time.Duration) WatchOption {
	return watchOption(func(c *watchConfig) error {
		if d <= 0 {
			return invalid("WithPollInterval(%v): must be positive", d)
		}
		c.interval = d
		return nil
	})
}

// WithOnReload sets a function that Watch calls, on its own goroutine, after
// every attempt to load a new version of the file, and when the file cannot
// be read (with a new error). On error the previous config stays in force.
func WithOnReload(f func(ConfigInfo, error)) WatchOption {
	return watchOption(func(c *watchConfig) error {
		if f == nil {
			return invalid("WithOnReload(nil): needs a function")
		}
		c.onReload = f
		return nil
	})
}

// Watch loads the config file at path now, then polls it every interval
// and loads it again whenever its content changes, until ctx is done; it
// then returns ctx.Err(). A rejected document or an unreadable file is
// reported (through WithOnReload and the log) once per distinct content or
// error, and the last good config stays in force. Each poll also evaluates
// the schedule of every registered gate, so with Watch running no
// promotion lags its due time by more than one interval. Watch starts no
// other goroutine. Invalid options wrap ErrInvalidConfig.
func (r *Registry) Watch(ctx context.Context, path string, opts ...WatchOption) error {
	c := watchConfig{interval: time.Second}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyWatch(&c); err != nil {
			return err
		}
	}
	t := time.NewTicker(c.interval)
	defer t.Stop()
	w := watcher{r: r, path: path, cfg: c}
	for {
		w.poll()
		r.evaluate()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

type watcher struct {
	r       *Registry
	path    string
	cfg     watchConfig
	seen    bool
	last    [sha256.Size]byte
	lastErr string
}

func (w *watcher) poll() {
	data, err := readBounded(w.path)
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.r.noisy.Error("rollout: cannot read config file; the previous config stays in force", "path", w.path, "error", err)
			if w.cfg.onReload != nil {
				w.cfg.onReload(ConfigInfo{}, err)
			}
		}
		return
	}
	w.lastErr = ""
	sum := sha256.Sum256(data)
	if w.seen && sum == w.last {
		return
	}
	w.seen, w.last = true, sum
	info, err := w.r.LoadConfig(bytes.NewReader(data))
	if w.cfg.onReload != nil {
		w.cfg.onReload(info, err)
	}
}

// readBounded reads at most MaxConfigBytes+1 bytes of the file, so that
// LoadConfig can tell a file that is too large.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("rollout: read %s: %w", path, err)
	}
	return data, nil
}
