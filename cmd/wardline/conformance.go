package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/wardline/wardline/transport/socketio"
)

// runConformance serves the echo behaviour of the official Socket.IO and
// Engine.IO protocol test suites, so they can be run against this
// implementation of the protocols.
func runConformance(ctx context.Context, args []string, stdio IO) error {
	var addr string
	fs := flag.NewFlagSet("wardline conformance", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	fs.StringVar(&addr, "addr", "localhost:3000", "listen address (the suites expect localhost:3000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := socketio.NewConformanceServer()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	srv := &http.Server{Handler: cs, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdio.Stderr, "wardline: conformance server on http://%s (engine.io at /engine.io/, socket.io at /socket.io/)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cs.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
