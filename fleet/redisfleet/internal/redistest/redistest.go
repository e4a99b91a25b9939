// Package redistest starts real redis-server processes and TCP proxies for
// the tests and measurements of redisfleet: a server on a free loopback
// port, stopped by PID, that can be paused (SIGSTOP) and resumed, and a
// proxy whose connections can be cut to partition one client from it.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the command that installs the server.
const InstallHint = "apt-get install redis-server"

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer

	mu     sync.Mutex
	paused bool
	done   chan struct{}
}

// Lookup returns the path of redis-server, or an error that names the
// install command.
func Lookup() (string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found; install it with %s", InstallHint)
	}
	return path, nil
}

// StartT starts a server for a test and stops it in Cleanup. Without
// redis-server the test fails under CI=true and is skipped otherwise.
func StartT(t testing.TB) *Server {
	t.Helper()
	path, err := Lookup()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s, err := Start(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts the redis-server at path on 127.0.0.1 on a free port,
// without persistence, and waits until it answers PING.
func Start(path string) (*Server, error) {
	var last error
	for range 3 { // another process may take the free port first
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: new(bytes.Buffer), done: make(chan struct{})}
		s.cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("redistest: start %s: %w", path, err)
		}
		go func() {
			_ = s.cmd.Wait()
			close(s.done)
		}()
		if last = s.waitReady(5 * time.Second); last == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, last
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the server with PING until it answers or the bound passes.
func (s *Server) waitReady(bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redistest: redis-server exited: %s", s.out.String())
		default:
		}
		if Ping(s.Addr, 200*time.Millisecond) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redistest: redis-server on %s not ready after %v", s.Addr, bound)
}

// Ping sends PING on a new connection and waits for +PONG.
func Ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redistest: PING answered %q", line)
	}
	return nil
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Pause stops the server process (SIGSTOP): connections stay open, and
// nothing is answered, as with a hung server.
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	return s.cmd.Process.Signal(syscall.SIGSTOP)
}

// Continue resumes a paused server (SIGCONT).
func (s *Server) Continue() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	return s.cmd.Process.Signal(syscall.SIGCONT)
}

// Stop kills the server by its PID and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Proxy forwards TCP connections to a target. Cut closes every connection
// and refuses new ones (closing them at once) until Heal: a partition
// between the proxy's clients and the target.
type Proxy struct {
	Addr   string
	target string
	l      net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy on a free loopback port.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// NewProxyT is NewProxy for a test, closed in Cleanup.
func NewProxyT(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Heal accepts connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	_ = p.l.Close()
	p.Cut()
	p.wg.Wait()
}
