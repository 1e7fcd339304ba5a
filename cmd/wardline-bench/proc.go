package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. The kernel exports
// these fields in USER_HZ, which is 100 on every Linux architecture Go
// supports, so no sysconf (and no cgo) is needed; the price is a 10 ms
// resolution, negligible over a measured window of seconds.
const userHZ = 100

// errProcFormat is returned when a /proc file does not have the expected shape.
var errProcFormat = errors.New("unexpected /proc format")

// parseStatCPU returns utime+stime from the contents of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' in stat", errProcFormat)
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("%w: stat has %d fields after the name", errProcFormat, len(f))
	}
	u, err := strconv.ParseUint(string(f[utime]), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: utime: %v", errProcFormat, err)
	}
	s, err := strconv.ParseUint(string(f[stime]), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: stime: %v", errProcFormat, err)
	}
	return time.Duration(u+s) * (time.Second / userHZ), nil
}

// parseStatusKiB returns a "Name:   1234 kB" field of /proc/<pid>/status
// in KiB, e.g. VmRSS or VmHWM.
func parseStatusKiB(b []byte, name string) (uint64, error) {
	key := []byte(name + ":")
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%w: %s line %q", errProcFormat, name, bytes.TrimSpace(line))
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", errProcFormat, name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("%w: no %s in status", errProcFormat, name)
}

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	CPU    time.Duration
	RSSKiB uint64
	HWMKiB uint64 // peak RSS so far
}

// readProc samples the process pid from /proc.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read server stat: %w", err)
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read server status: %w", err)
	}
	if s.RSSKiB, err = parseStatusKiB(status, "VmRSS"); err != nil {
		return s, err
	}
	if s.HWMKiB, err = parseStatusKiB(status, "VmHWM"); err != nil {
		return s, err
	}
	return s, nil
}
