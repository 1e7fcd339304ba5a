package main

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"utime and stime in ticks add up", "1234 (wardline) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200 0\n", 3 * time.Second, false},
		{"a name with spaces and parentheses is skipped", "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1\n", 100 * time.Millisecond, false},
		{"a stat without the name's parenthesis is refused", "1234 wardline S 1", 0, true},
		{"a truncated stat is refused", "1 (x) S 1 2 3", 0, true},
		{"a non-numeric utime is refused", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0 0 20 0 1 0 1 1 1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if tt.wantErr {
				if !errors.Is(err, errProcFormat) {
					t.Fatalf("err = %v, want errProcFormat", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\twardline\nVmPeak:\t  900 kB\nVmHWM:\t   30000 kB\nVmRSS:\t   24576 kB\nThreads:\t8\nBad:\t12 MB\n"
	tests := []struct {
		name, field string
		want        uint64
		wantErr     bool
	}{
		{"VmRSS is read in KiB", "VmRSS", 24576, false},
		{"VmHWM is read in KiB", "VmHWM", 30000, false},
		{"a missing field is an error", "VmSwap", 0, true},
		{"a field in another unit is an error", "Bad", 0, true},
		{"a prefix of another field name does not match it", "Vm", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusKiB([]byte(status), tt.field)
			if tt.wantErr != (err != nil) || got != tt.want {
				t.Fatalf("parseStatusKiB(%s) = %d, %v", tt.field, got, err)
			}
		})
	}
}

func TestReadProcReadsThisProcess(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB == 0 || s.HWMKiB < s.RSSKiB {
		t.Fatalf("sample %+v: RSS must be positive and the peak at least the RSS", s)
	}
}
