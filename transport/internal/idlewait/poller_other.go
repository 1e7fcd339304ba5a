//go:build !linux

package idlewait

import (
	"errors"
	"syscall"
)

// Poller is Linux only (epoll); elsewhere NewPoller returns nil and an
// idle connection waits in a goroutine (Wait).
type Poller struct{}

// Handle is one socket's registration.
type Handle struct{}

// ErrStopped is returned by Register after Stop.
var ErrStopped = errors.New("idlewait: poller stopped")

var errUnsupported = errors.New("idlewait: no poller on this platform")

// NewPoller returns nil: there is no poller on this platform.
func NewPoller() *Poller { return nil }

// Register fails: there is no poller on this platform.
func (p *Poller) Register(syscall.RawConn, func()) (*Handle, error) { return nil, errUnsupported }

// Arm fails: there is no poller on this platform.
func (h *Handle) Arm() error { return errUnsupported }

// Close does nothing.
func (h *Handle) Close() {}

// Stop does nothing.
func (p *Poller) Stop() {}
