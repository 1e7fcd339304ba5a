package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds how long a started server may take to answer /healthz.
	readyTimeout = 60 * time.Second
	// stopGrace is how long SIGTERM gets before SIGKILL; DESIGN.md promises
	// an exit within 10 s of SIGTERM.
	stopGrace = 10 * time.Second
	// modulePath identifies the repository root when building the server.
	modulePath = "github.com/wardline/wardline"
)

// child is a `wardline serve` the tool started and therefore owns: it
// measures its CPU and memory through /proc and stops it at the end.
type child struct {
	cmd       *exec.Cmd
	addr      string
	debugAddr string // the server's /debug/pprof listener
	dataDir   string
	logPath   string
	exited    chan struct{}
	waitErr   error
}

// findModuleRoot walks up from dir to the wardline module's go.mod.
func findModuleRoot(dir string) (string, error) {
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s go.mod above the working directory: pass --server-bin or --addr", modulePath)
		}
		dir = parent
	}
}

// buildServer compiles ./cmd/wardline into dir, so a run measures the code
// of this checkout rather than a stale bin/wardline.
func buildServer(ctx context.Context, dir string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build server: %w", err)
	}
	root, err := findModuleRoot(wd)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wardline")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wardline")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/wardline: %w\n%s", err, out)
	}
	return bin, nil
}

// freeAddr picks a free loopback port. Another process could take it
// before the server binds it; the server then fails to start and says so.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("pick a port: %w", err)
	}
	return addr, nil
}

// startServer runs `bin serve --addr 127.0.0.1:<free> --debug-addr
// 127.0.0.1:<free> --data <tmp>` plus
// extra arguments, with its log in a file of the temporary directory, and
// waits until /healthz answers.
func startServer(ctx context.Context, bin, tmp string, extra []string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &child{addr: addr, debugAddr: debugAddr, dataDir: filepath.Join(tmp, "data"), logPath: filepath.Join(tmp, "server.log"), exited: make(chan struct{})}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
	args := append([]string{"serve", "--addr", addr, "--debug-addr", debugAddr, "--data", c.dataDir}, extra...)
	// Not CommandContext: the child must get SIGTERM and its grace period,
	// not an immediate SIGKILL, when the run is interrupted.
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitHealthy(ctx); err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("%w\n%s", err, c.logTail())
	}
	return c, nil
}

// waitHealthy polls /healthz until it answers 200, the child exits, or
// readyTimeout passes.
func (c *child) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("healthz: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("server exited before it was healthy: %v", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("server not healthy after %s: %w", readyTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits stopGrace, then SIGKILLs. It returns an error
// when the server had to be killed or exited with a failure.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return c.exitErr()
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal server: %w", err)
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.exitErr()
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("server did not exit within %s of SIGTERM; killed", stopGrace)
	}
}

func (c *child) exitErr() error {
	if c.waitErr != nil {
		return fmt.Errorf("server exit: %w\n%s", c.waitErr, c.logTail())
	}
	return nil
}

// logTail is the end of the server's log, for error messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	const keep = 2048
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return "server log (tail):\n" + string(b)
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit: thousands of
// client sockets need it, and the server child inherits the raised limit.
func raiseNoFile() (syscall.Rlimit, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return r, fmt.Errorf("getrlimit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return r, fmt.Errorf("setrlimit NOFILE %d: %w", r.Max, err)
		}
	}
	return r, nil
}

// selfCPU is the tool's own CPU time, reported beside the server's so a
// reader can see when the load generator, not the server, was the limit.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfPeakRSS is the tool's own peak RSS in KiB (0 if unreadable).
func selfPeakRSS() uint64 {
	s, err := readProc(os.Getpid())
	if err != nil {
		return 0
	}
	return s.HWMKiB
}
